//! `ssehub bench fanout`, `bench topics` and `bench snapshot` against the real hub: smoke
//! tests of counts, never of timings.

use std::time::Duration;

use tokio::process::Command;

use crate::util::TestHub;

/// The one JSON object a successful `bench … --json` printed.
fn json_report((ok, stdout, stderr): (bool, String, String)) -> serde_json::Value {
    assert!(ok, "{stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {stdout}"))
}

/// Asserts each `(field, value)` of `report`.
fn assert_fields(report: &serde_json::Value, fields: &[(&str, u64)]) {
    for (field, want) in fields {
        assert_eq!(report[field], *want, "{field} in {report}");
    }
}

/// Runs `ssehub bench <args>` (at most 60 s) and returns (success, stdout, stderr).
async fn bench(args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .arg("bench")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the bench ends by itself")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn fanout_delivers_every_event_to_every_subscriber() {
    let hub = TestHub::start(&[]).await;
    let report = json_report(
        bench(&[
            "fanout",
            "--hub",
            &hub.url,
            "--subscribers",
            "5",
            "--events",
            "20",
            "--rate",
            "200",
            "--json",
        ])
        .await,
    );
    assert_fields(
        &report,
        &[
            ("subscribers", 5),
            ("events_published", 20),
            ("publish_errors", 0),
            ("deliveries_expected", 100),
            ("delivered", 100),
            ("lost", 0),
            ("duplicates", 0),
            ("out_of_order", 0),
            ("streams_ended_early", 0),
            ("foreign_events", 0),
        ],
    );
    // Timings are present (not checked: they are measurements, not assertions).
    for p in ["p50", "p90", "p99", "max"] {
        assert!(report["latency_ms"][p].is_number(), "{report}");
    }
}

#[tokio::test]
async fn fanout_prints_a_table_without_json_and_publishes_in_parallel() {
    let hub = TestHub::start(&[]).await;
    let (ok, stdout, stderr) = bench(&[
        "fanout",
        "--hub",
        &hub.url,
        "--subscribers",
        "2",
        "--events",
        "6",
        "--rate",
        "100",
        "--publishers",
        "3",
    ])
    .await;
    assert!(ok, "{stderr}");
    for row in [
        "delivered",
        "lost",
        "duplicates",
        "out of order",
        "latency ms",
    ] {
        assert!(stdout.contains(row), "{row} missing in\n{stdout}");
    }
    let delivered = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("delivered"));
    assert_eq!(
        delivered.and_then(|l| l.split_whitespace().nth(1)),
        Some("12"),
        "{stdout}"
    );
}

#[tokio::test]
async fn fanout_fails_clearly_when_no_hub_listens() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (ok, stdout, stderr) = bench(&["fanout", "--hub", &url, "--subscribers", "3"]).await;
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("0 of 3 subscriptions opened"),
        "unexpected error: {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[tokio::test]
async fn topics_delivers_one_event_to_each_topic() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let report = json_report(
        bench(&[
            "topics",
            "--hub",
            &hub.url,
            "--topics",
            "12",
            "--batch",
            "5",
            "--rate",
            "500",
            "--parts",
            "3",
            "--hub-pid",
            &hub.pid().to_string(),
            "--json",
        ])
        .await,
    );
    assert_fields(
        &report,
        &[
            ("topics", 12),
            ("events_published", 12),
            ("publish_errors", 0),
            ("delivered", 12),
            ("lost", 0),
            ("duplicates", 0),
            ("wrong_topic", 0),
            ("streams_ended_early", 0),
            ("foreign_events", 0),
            ("parse_errors", 0),
        ],
    );
    let parts = report["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "{report}");
    let events: u64 = parts.iter().map(|p| p["events"].as_u64().unwrap()).sum();
    assert_eq!(events, 12, "{report}");
    // Timings and the hub's CPU and memory are present (measurements, never assertions).
    for p in ["p50", "p90", "p99", "max"] {
        assert!(report["latency_ms"][p].is_number(), "{report}");
    }
    assert!(report["hub_cpu_us_per_event"].is_number(), "{report}");
    assert!(parts[0]["hub_cpu_us_per_event"].is_number(), "{report}");
}

#[tokio::test]
async fn topics_prints_a_table_against_the_durable_store() {
    let hub = TestHub::start(&[]).await;
    let (ok, stdout, stderr) = bench(&[
        "topics", "--hub", &hub.url, "--topics", "7", "--batch", "3", "--rate", "200",
    ])
    .await;
    assert!(ok, "{stderr}");
    for row in ["delivered", "lost", "wrong topic", "latency ms", "per part"] {
        assert!(stdout.contains(row), "{row} missing in\n{stdout}");
    }
    let value = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.trim_start()[name.len()..].split_whitespace().next())
            .map(str::to_string)
    };
    assert_eq!(value("delivered").as_deref(), Some("7"), "{stdout}");
    assert_eq!(value("lost").as_deref(), Some("0"), "{stdout}");
    assert_eq!(value("wrong topic").as_deref(), Some("0"), "{stdout}");
}

/// `bench storm` restarts a durable hub it runs itself (SIGKILL: a crash) under its clients;
/// each comes back with its `Last-Event-ID` and gets what was published while it was away.
/// (Without exact resume the events published before the clients come back would be lost.)
#[tokio::test]
async fn storm_brings_every_client_back_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = format!("http://127.0.0.1:{port}");
    let serve = format!(
        "{} serve --listen 127.0.0.1:{port} --data-dir {} --log warn --retry-ms 500 --retry-jitter-ms 200",
        env!("CARGO_BIN_EXE_ssehub"),
        dir.path().display()
    );
    let report = json_report(
        bench(&[
            "storm",
            "--hub",
            &hub,
            "--serve",
            &serve,
            "--clients",
            "20",
            "--events",
            "10",
            "--rate",
            "10",
            "--stop",
            "kill",
            "--max-duration",
            "50",
            "--json",
        ])
        .await,
    );
    assert_fields(
        &report,
        &[
            ("clients", 20),
            ("events_published", 20),
            ("events_acknowledged", 20),
            ("reconnected", 20),
            ("lost", 0),
            ("duplicates", 0),
            ("out_of_order", 0),
            ("gap_notices", 0),
            ("parse_errors", 0),
        ],
    );
    assert!(report["all_caught_up_ms"].is_number(), "{report}");
}

/// `bench snapshot` fills a keyed topic and reads one late joiner's snapshot: every key once,
/// with its last version, on both stores.
#[tokio::test]
async fn snapshot_reads_every_key_once() {
    for store in ["memory", "disk"] {
        let hub = TestHub::start(&["--store", store]).await;
        let report = json_report(
            bench(&[
                "snapshot",
                "--hub",
                &hub.url,
                "--keys",
                "1500",
                "--versions",
                "3",
                "--json",
            ])
            .await,
        );
        assert_fields(
            &report,
            &[("keys", 1500), ("events_published", 4500), ("wrong", 0)],
        );
        assert!(
            report["snapshot_ms"].as_f64().unwrap() >= report["first_event_ms"].as_f64().unwrap()
        );
    }
}
