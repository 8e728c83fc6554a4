//! A node file as text: read whole, refused unless it is UTF-8 without
//! control characters (naming the line), its format told by its extension;
//! and any message about it made one line, its odd characters escaped.

use std::path::Path;

use config::FileFormat;

/// The most characters of a message about a file that are shown.
const SHOWN: usize = 300;

/// The text of the node file at `path` and its format, or why it cannot
/// be one (without the file's name, which the caller adds).
pub(super) fn read(path: &Path) -> std::result::Result<(String, FileFormat), String> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => FileFormat::Toml,
        Some("yaml" | "yml") => FileFormat::Yaml,
        _ => {
            return Err(
                "not of a supported file format: a node file is .toml, .yaml or .yml".into(),
            );
        }
    };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let (line, column) = line_and_column(&bytes[..at]);
        format!(
            "line {line}, column {column}: not valid UTF-8 (byte {:#04x}); a node file is UTF-8 text",
            bytes[at]
        )
    })?;
    if let Some(at) = text.find(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        let (line, column) = line_and_column(&text.as_bytes()[..at]);
        let byte = text[at..].chars().next().map_or(0, u32::from);
        return Err(format!(
            "line {line}, column {column}: control character {byte:#04x}; a node file is text"
        ));
    }
    Ok((text, format))
}

/// The line and column (from 1, in bytes) just after `before`.
fn line_and_column(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    (line, before.len() - start + 1)
}

/// `message` on one line: its lines joined by `: `, without the excerpt
/// of the file a parser draws (lines in a `|` gutter), other control
/// characters escaped, and cut to [`SHOWN`] characters.
pub(super) fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(SHOWN + 8));
    let mut shown = 0;
    let excerpt = |line: &str| {
        let line = line
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
        line.trim_start().starts_with('|')
    };
    let lines = message
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !excerpt(l));
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        for c in line.chars() {
            if shown == SHOWN {
                out.push_str("...");
                return out;
            }
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
            shown += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line_with_control_characters_escaped_and_cut() {
        assert_eq!(one_line("a\nb\u{1}\n\n  c"), "a: b\\u{1}:   c");
        assert_eq!(
            one_line(
                "TOML parse error at line 1, column 6\n  |\n1 | [node\n  |      ^\nunclosed table\n"
            ),
            "TOML parse error at line 1, column 6: unclosed table"
        );
        let long = one_line(&"x".repeat(1000));
        assert_eq!(long.chars().count(), SHOWN + 3);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_and_column(b""), (1, 1));
        assert_eq!(line_and_column(b"ab\ncd"), (2, 3));
    }
}
