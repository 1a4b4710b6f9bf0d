//! The native routes in process: bad input and its errors, the connection limit, `/healthz`,
//! `/metrics` and CORS. (Resume, fan-out and shutdown through real sockets are the binary's
//! tests, `crates/ssehub/tests/serve.rs`.)

use ssehub_http::HttpConfig;

use crate::util::{Req, TestApp, data, seq};

/// Bad input: a clear JSON error with a status that says whose fault it is, counted by
/// reason, and nothing stored is harmed.
#[tokio::test]
async fn bad_inputs_are_refused_and_harm_nothing() {
    let app = TestApp::with_config(HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    });
    let good = app.publish("bad/ok", "kept").await;
    let mut watcher = app.subscribe("/topics/bad/**", None).await;
    let cases: Vec<(Req, u16, &str)> = vec![
        (
            app.post("/topics/bad/ok").body("x".repeat(2048)),
            413,
            "body_too_large",
        ),
        (app.post("/topics/bad//x").body("x"), 400, "invalid_topic"),
        (app.post("/topics/bad/*").body("x"), 400, "invalid_topic"),
        (
            app.post("/topics/bad/ok?event=a%0Ab").body("x"),
            400,
            "invalid_event",
        ),
        (
            app.post("/topics/bad/ok?event=a%0Db").body("x"),
            400,
            "invalid_event",
        ),
        (
            app.post("/topics/bad/ok?event=ssehub-gap").body("x"),
            400,
            "invalid_event",
        ),
        (
            app.post("/topics/bad/ok?event=x.b64").body("x"),
            400,
            "invalid_event",
        ),
        (
            app.post("/publish")
                .body(r#"[{"topic":"a","data_base64":"***"}]"#),
            400,
            "invalid_base64",
        ),
        (
            app.post("/topics/bad/ok").body(vec![0xff, 0xfe]),
            400,
            "invalid_utf8",
        ),
        (
            app.post("/topics/bad/ok?evnt=x").body("x"),
            400,
            "unknown_parameter",
        ),
        (app.post("/publish").body("{not json"), 400, "invalid_json"),
        (
            app.post("/publish")
                .body(r#"[{"topic":"a","data":"x","extra":1}]"#),
            400,
            "invalid_json",
        ),
        (
            app.post("/publish")
                .body(r#"[{"topic":"a","data":"x"},{"topic":"","data":"y"}]"#),
            400,
            "invalid_topic",
        ),
        (app.get("/topics/bad//x"), 400, "invalid_topic"),
        (app.get("/topics/a/**/b"), 400, "invalid_topic"),
        (app.get("/subscribe"), 400, "invalid_topic"),
        (
            app.get(&format!(
                "/subscribe?{}",
                (0..33)
                    .map(|i| format!("topic=t{i}"))
                    .collect::<Vec<_>>()
                    .join("&")
            )),
            400,
            "too_many_topics",
        ),
        (app.get("/nope"), 404, "not_found"),
    ];
    for (request, status, reason) in cases {
        let response = request.send().await;
        assert_eq!(response.status().as_u16(), status, "{reason}");
        let body = response.json().await;
        assert_eq!(body["error"], reason, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    // A bad element refuses the whole batch: nothing of it was stored or delivered.
    let after = app.publish("bad/ok", "after").await;
    assert_eq!(seq(&after), seq(&good) + 1, "no refused event took an id");
    assert_eq!(data(&watcher.take(1).await), ["after"]);
    let mut replay = app
        .subscribe("/topics/bad/ok?lastEventId=earliest", None)
        .await;
    assert_eq!(data(&replay.take(2).await), ["kept", "after"]);
    assert_eq!(
        app.metric("ssehub_rejected_requests_total{reason=\"invalid_topic\"}")
            .await,
        6.0
    );
}

/// Over the connection limit: 503 with Retry-After; the streams already open keep working.
#[tokio::test]
async fn connection_limit_gives_503() {
    let app = TestApp::with_config(HttpConfig {
        max_connections: 2,
        ..HttpConfig::default()
    });
    let mut a = app.subscribe("/topics/cl", None).await;
    let _b = app.subscribe("/topics/cl", None).await;
    let r = app.get("/topics/cl").send().await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body = r.json().await;
    assert_eq!(body["error"], "over_connection_limit");
    app.publish("cl", "still served").await;
    assert_eq!(data(&a.take(1).await), ["still served"]);
    // A stream's slot is free once its body is dropped: wait for the count, not for a time.
    drop(a);
    app.metric_reaches("ssehub_connections", 1.0).await;
    let _c = app.subscribe("/topics/cl", None).await;
}

#[tokio::test]
async fn healthz_metrics_and_cors() {
    let app = TestApp::with_config(HttpConfig {
        cors_origins: vec!["http://app.example".into()],
        ..HttpConfig::default()
    });
    let r = app.get("/healthz").send().await;
    assert_eq!(r.status(), 200);
    app.publish("mx", "1").await;
    assert_eq!(app.metric("ssehub_events_published_total").await, 1.0);
    let _sub = app.subscribe("/topics/mx", None).await;
    assert_eq!(app.metric("ssehub_connections").await, 1.0);
    let r = app
        .get("/topics/mx")
        .header("origin", "http://app.example")
        .send()
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let r = app
        .get("/healthz")
        .header("origin", "http://evil.example")
        .send()
        .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
