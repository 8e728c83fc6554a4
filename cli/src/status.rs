//! `scribe status`: a node's actors, one line each, read from its admin
//! endpoint's `GET /actors`.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use scribe::Secret;

use crate::error::{Error, Result};

use crate::settings::NodeConfig;

/// Where to ask, and with which token.
#[derive(Debug)]
pub(crate) struct Status {
    url: String,
    token: Option<Secret>,
    agent: ureq::Agent,
}

/// What `scribe status` found: every actor running (or paused on purpose),
/// or some not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Every actor runs (paused ones included).
    Running,
    /// Some actor is starting, restarting, unhealthy or stopped.
    NotRunning,
}

impl Status {
    /// The endpoint of the node `config` describes, or `admin` (a URL or
    /// `HOST:PORT`) when given; the token is the file's `admin_token`.
    pub(crate) fn new(config: &NodeConfig, admin: Option<&str>) -> Result<Self> {
        let url = match admin {
            Some(given) if given.contains("://") => given.trim_end_matches('/').to_owned(),
            Some(given) => format!("http://{given}"),
            None => match config.node.admin {
                Some(addr) => format!("http://{addr}"),
                None => {
                    return Err(Error::Config {
                        file: config.file.clone(),
                        message: "node.admin: not set, so the node serves no admin \
                                  endpoint; set it, or pass --admin URL"
                            .into(),
                    });
                }
            },
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            url,
            token: config.node.admin_token.clone(),
            agent,
        })
    }

    /// `GET /actors`, parsed.
    fn actors(&self) -> Result<serde_json::Value> {
        let unreachable = |reason: String| Error::AdminUnreachable {
            url: self.url.clone(),
            reason,
        };
        let mut request = self.agent.get(format!("{}/actors", self.url));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let mut answer = request.call().map_err(|e| unreachable(e.to_string()))?;
        let status = answer.status();
        let body = answer
            .body_mut()
            .read_to_string()
            .map_err(|e| unreachable(e.to_string()))?;
        if !status.is_success() {
            let said = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(unreachable(format!("{status}: {said}")));
        }
        serde_json::from_str(&body)
            .map_err(|e| unreachable(format!("not the JSON of GET /actors: {e}")))
    }

    /// Prints the table once; says whether every actor runs.
    pub(crate) fn once(&self) -> Result<Health> {
        let actors = self.actors()?;
        let (table, health) = table(&self.url, &actors);
        print!("{table}");
        Ok(health)
    }

    /// Prints the table every `interval` until interrupted, clearing the
    /// terminal first when printing to one; an endpoint that does not
    /// answer is said and asked again.
    pub(crate) fn watch(&self, interval: Duration) -> ! {
        let terminal = std::io::stdout().is_terminal();
        loop {
            let shown = match self.actors() {
                Ok(actors) => table(&self.url, &actors).0,
                Err(error) => format!("{error}\n"),
            };
            if terminal {
                print!("\x1b[2J\x1b[H");
            }
            print!("{shown}");
            if !terminal {
                println!();
            }
            std::thread::sleep(interval);
        }
    }
}

/// The table of `GET /actors`' answer: a header, then one line per actor
/// (state, records/s in and out, lag, failures, last error).
fn table(url: &str, answer: &serde_json::Value) -> (String, Health) {
    let mut out = String::new();
    let node = answer["node"].as_str().unwrap_or("?");
    let _ = writeln!(out, "node {node} at {url}");
    let actors = answer["actors"].as_array().map_or(&[][..], Vec::as_slice);
    let width = actors
        .iter()
        .filter_map(|a| a["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max("ACTOR".len());
    let _ = writeln!(
        out,
        "{:<width$} {:<11} {:>9} {:>9} {:>8} {:>9} {:>8}  LAST ERROR",
        "ACTOR", "STATE", "IN/S", "OUT/S", "LAG", "HANDLED", "FAILURES"
    );
    let mut health = Health::Running;
    for actor in actors {
        let state = actor["state"].as_str().unwrap_or("?");
        if !matches!(state, "running" | "paused") {
            health = Health::NotRunning;
        }
        let reads = actor["subscriptions"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let lag = actor["lag"].as_object().filter(|l| !l.is_empty());
        let lag = match (reads, lag) {
            (false, _) => "-".to_owned(),
            (true, None) => "?".to_owned(),
            (true, Some(lag)) => lag
                .values()
                .filter_map(|v| v.as_i64())
                .sum::<i64>()
                .to_string(),
        };
        let in_rate = if reads {
            format!("{:.1}", actor["handled_per_second"].as_f64().unwrap_or(0.0))
        } else {
            "-".to_owned()
        };
        let number = |key: &str| actor[key].as_u64().unwrap_or(0);
        let last = actor["last_error"].as_str().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<width$} {:<11} {:>9} {:>9.1} {:>8} {:>9} {:>8}  {}",
            actor["name"].as_str().unwrap_or("?"),
            state,
            in_rate,
            actor["published_per_second"].as_f64().unwrap_or(0.0),
            lag,
            number("handled"),
            number("handler_failures"),
            one_line(last),
        );
    }
    (out, health)
}

/// `text` on one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_actor_is_one_line_with_its_rates_lag_and_last_error() {
        let answer = serde_json::json!({
            "node": "monitor",
            "actors": [
                {"name": "sampler", "state": "running", "subscriptions": [],
                 "handled_per_second": 0.0, "published_per_second": 2.0, "lag": {},
                 "handled": 0, "handler_failures": 0, "last_error": null},
                {"name": "alarm", "state": "unhealthy", "subscriptions": ["metrics"],
                 "handled_per_second": 0.0, "published_per_second": 0.0,
                 "lag": {"metrics": 7, "other": 5},
                 "handled": 12, "handler_failures": 3,
                 "last_error": "restart budget spent:\nboom"},
            ]
        });
        let (text, health) = table("http://127.0.0.1:9464", &answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "node monitor at http://127.0.0.1:9464");
        assert!(lines[2].starts_with("sampler") && lines[2].contains("running"));
        let alarm: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            &alarm[..7],
            &["alarm", "unhealthy", "0.0", "0.0", "12", "12", "3"]
        );
        assert!(
            lines[3].ends_with("restart budget spent: boom"),
            "{}",
            lines[3]
        );
        assert_eq!(health, Health::NotRunning);
    }
}
