//! The request/reply example: an HTTP request to `GET /double/{n}` is
//! answered by the doubler actor over Kafka, through the gateway.

use std::time::Duration;

use scribe_examples::ask;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn an_http_request_is_answered_by_an_actor_over_kafka() {
    let kafka = TestKafka::from_env();
    let node = ask::doubler(kafka.node(&unique("ask")))
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let gateway = ask::gateway(&node).await.expect("gateway starts");
    let routes = gateway.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(ask::routes(routes.clone()))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("a free port");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix::spawn(server);

    let answers = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        [21, -4, 0].map(|n| {
            let mut answer = agent
                .get(format!("http://{addr}/double/{n}"))
                .call()
                .expect("the endpoint answers");
            let status = answer.status().as_u16();
            let body = answer.body_mut().read_to_string().unwrap();
            (n, status, body)
        })
    })
    .await
    .unwrap();
    for (n, status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["n"], *n);
        assert_eq!(answer["doubled"], 2 * n);
    }
    println!("answered over HTTP: {answers:?}; {:?}", gateway.stats());
    handle.stop(true).await;
    gateway.close().await;
    node.shutdown().await.expect("clean shutdown");
}
