//! The hub at its open-file limit, and `ssehub bench conns`.
//!
//! The hub runs with a limit of 64 descriptors (`prlimit`, or `ulimit -n` in a shell), so a
//! few dozen connections reach it. At the limit it must keep serving the connections it has,
//! wait between accept attempts instead of spinning, count the failures in
//! `ssehub_accept_errors_total`, and accept again once descriptors free up. Nothing here
//! asserts a speed: the CPU check only tells a busy loop from an idle process.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::raw_http::RawConn;
use crate::util::{TestHub, listen_url};

/// The hub's descriptor limit in these tests.
const FD_LIMIT: u32 = 64;

/// A hub started with a low open-file limit; killed when dropped.
struct LimitedHub {
    url: String,
    pid: u32,
    _child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl LimitedHub {
    async fn start() -> LimitedHub {
        let bin = env!("CARGO_BIN_EXE_ssehub");
        let serve = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--log",
            "info",
        ];
        let has_prlimit = std::process::Command::new("prlimit")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut command = if has_prlimit {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={FD_LIMIT}:{FD_LIMIT}")).arg(bin);
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
                .arg(bin);
            c
        };
        let mut child = command
            .args(serve)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the hub starts");
        // prlimit and sh both exec the hub: the child's pid is the hub's.
        let pid = child.id().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = listen_url(&mut stdout).await;
        LimitedHub {
            url,
            pid,
            _child: child,
            stderr,
        }
    }

    fn log_has(&self, text: &str) -> bool {
        self.stderr.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// User plus system CPU time of the hub so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // Fields after the command name (which may hold spaces, in parentheses): state is
        // field 3, utime 14 and stime 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know of).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Sums every `ssehub_accept_errors_total{…}` line.
fn accept_errors(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("ssehub_accept_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Opens an SSE subscription on a new connection; `None` when the hub does not answer
/// within `wait` (it did not accept the connection).
async fn subscribe(url: &str, topic: &str, wait: Duration) -> Option<RawConn> {
    let mut conn = RawConn::connect(url).await;
    let request = format!(
        "GET /topics/{topic} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    );
    conn.send(request.as_bytes()).await;
    let (status, _) = conn.head(wait).await?;
    assert_eq!(status, 200, "{}", conn.received());
    assert!(conn.read_until("retry:", wait).await, "the stream starts");
    Some(conn)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_hub_keeps_serving_at_its_descriptor_limit() {
    let hub = LimitedHub::start().await;
    // A keep-alive connection for publishing and metrics: at the limit, no new one gets in.
    let mut control = RawConn::connect(&hub.url).await;
    let health = control.request("GET", "/healthz", "").await;
    assert_eq!(health.status, 200);
    let mut subscriber = subscribe(&hub.url, "limits/watched", Duration::from_secs(10))
        .await
        .expect("the first subscriber is accepted");

    // Fill the hub up: at most FD_LIMIT connections can be open, so this ends.
    let mut held = Vec::new();
    let mut waiting = None;
    for _ in 0..FD_LIMIT * 2 {
        let mut conn = RawConn::connect(&hub.url).await;
        conn.send(b"GET /topics/limits/filler HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        if conn.head(Duration::from_secs(2)).await.is_some() {
            held.push(conn);
        } else {
            waiting = Some(conn);
            break;
        }
    }
    let mut waiting = waiting.expect("the hub stops accepting at its descriptor limit");
    assert!(
        held.len() > 10,
        "only {} connections before the limit",
        held.len()
    );
    assert!(hub.log_has("open-file limit"), "the limits are logged");
    assert!(
        hub.log_has("max_open_connections is lowered to stay under the open-file limit"),
        "a connection cap above the open-file limit is lowered, and logged"
    );

    // The open connections are still served: a publish, and its delivery.
    let published = control
        .request("POST", "/topics/limits/watched", "at-the-limit")
        .await;
    assert_eq!(published.status, 200, "{published:?}");
    assert!(
        subscriber
            .read_until("data: at-the-limit", Duration::from_secs(10))
            .await,
        "the subscriber gets the event: {}",
        subscriber.received()
    );

    // The failures are counted.
    let metrics = control.request("GET", "/metrics", "").await;
    assert_eq!(metrics.status, 200);
    assert!(
        accept_errors(&metrics.body) > 0.0,
        "ssehub_accept_errors_total counts the refused accepts:\n{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("ssehub_accept_errors_total{reason=\"process_fd_limit\"}")),
        "{}",
        metrics.body
    );

    // No busy loop while at the limit: a spinning accept loop keeps a core busy (measured
    // at 60% of one on a loaded 2-core machine), a waiting one uses next to nothing.
    let ticks = clock_ticks();
    let before = hub.cpu_ticks();
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let used = (hub.cpu_ticks() - before) as f64 / ticks / started.elapsed().as_secs_f64();
    assert!(
        used < 0.25,
        "the hub used {:.0}% of a core while at its limit",
        used * 100.0
    );
    assert!(
        hub.log_has("cannot accept connections"),
        "a warning is logged"
    );

    // Once connections close, the waiting one and new ones are accepted.
    held.truncate(held.len() - 4);
    let (status, _) = waiting
        .head(Duration::from_secs(10))
        .await
        .expect("the waiting connection is accepted once descriptors are free");
    assert_eq!(status, 200);
    let fresh = subscribe(&hub.url, "limits/fresh", Duration::from_secs(10)).await;
    assert!(fresh.is_some(), "a new connection is accepted");
}

#[tokio::test]
async fn bench_conns_reports_its_connections_and_the_hub_memory() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(["bench", "conns", "--hub", &hub.url])
            .args([
                "--connections",
                "20",
                "--processes",
                "2",
                "--source-count",
                "2",
            ])
            .args([
                "--hold",
                "0.5",
                "--json",
                "--hub-pid",
                &hub.pid().to_string(),
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the bench ends by itself")
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {stdout}"));
    for (field, want) in [
        ("connections", 20),
        ("opened", 20),
        ("failed", 0),
        ("processes", 2),
        ("closed_by_hub", 0),
    ] {
        assert_eq!(report[field], want, "{field} in {report}");
    }
    assert_eq!(
        report["sources"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"]),
        "{report}"
    );
    assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");
    // Measurements are present (not checked: they are measurements, not assertions).
    for field in [
        "connect_secs",
        "held_secs",
        "hub_rss_before_kib",
        "hub_rss_open_kib",
        "hub_rss_held_kib",
        "rss_per_connection_bytes",
    ] {
        assert!(report[field].is_number(), "{field} in {report}");
    }
    // The hub saw them all go.
    hub.metric_reaches("ssehub_connections", 0.0).await;
}

#[tokio::test]
async fn bench_conns_counts_refused_connections() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args([
                "bench",
                "conns",
                "--hub",
                &format!("http://127.0.0.1:{port}"),
            ])
            .args(["--connections", "3", "--hold", "0.1", "--json"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the bench ends by itself")
    .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["opened"], 0, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
}
