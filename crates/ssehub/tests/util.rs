//! Running the real `ssehub serve` on 127.0.0.1:0, and talking to it over HTTP.
//!
//! A hub's stderr goes to the test's own stderr, unless it was started with
//! [`TestHub::start_capturing`], which keeps it for the test to read.

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use ssehub_wire::{Frame, MessageEvent, Parser};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The URL a starting hub announces on the first line of its stdout
/// (`ssehub listening on <url>`), waited for up to 30 s.
pub(crate) async fn listen_url(
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> String {
    let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the hub prints its address in time")
        .unwrap()
        .expect("the hub prints its address");
    line.strip_prefix("ssehub listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}

/// A hub process, killed when dropped.
pub(crate) struct TestHub {
    pub(crate) url: String,
    child: Child,
    /// The data dir, removed when the last user drops it.
    pub(crate) data_dir: std::sync::Arc<tempfile::TempDir>,
    /// Collects stderr until the process exits (hubs started with `start_capturing`).
    stderr: Option<tokio::task::JoinHandle<String>>,
}

impl TestHub {
    /// Starts `ssehub serve --listen 127.0.0.1:0 <args>` on a fresh data dir and waits for its
    /// listening line.
    pub(crate) async fn start(args: &[&str]) -> TestHub {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        TestHub::start_in(dir, "127.0.0.1:0", args).await
    }

    /// Starts a hub on `data_dir` (shared with an earlier hub: a restart), listening on
    /// `listen`.
    pub(crate) async fn start_in(
        data_dir: std::sync::Arc<tempfile::TempDir>,
        listen: &str,
        args: &[&str],
    ) -> TestHub {
        let path = data_dir.path().join("data");
        TestHub::start_at(data_dir, &path, listen, args).await
    }

    /// Starts a hub whose store is at `path` (`holder` is kept alive as long as the hub).
    pub(crate) async fn start_at(
        holder: std::sync::Arc<tempfile::TempDir>,
        path: &std::path::Path,
        listen: &str,
        args: &[&str],
    ) -> TestHub {
        TestHub::launch(holder, path, listen, args, false).await
    }

    /// Starts like [`start`](TestHub::start), but keeps what the hub writes on stderr instead
    /// of passing it through; [`finish_capturing`](TestHub::finish_capturing) returns it. A
    /// `--log FILTER` in `args` replaces the default `--log warn`.
    pub(crate) async fn start_capturing(args: &[&str]) -> TestHub {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let path = dir.path().join("data");
        TestHub::launch(dir, &path, "127.0.0.1:0", args, true).await
    }

    /// Stops a hub started with [`start_capturing`](TestHub::start_capturing) (SIGTERM, then
    /// waits for it to exit) and returns everything it wrote on stderr.
    pub(crate) async fn finish_capturing(&mut self) -> String {
        self.stop_capturing().await.1
    }

    /// [`finish_capturing`](TestHub::finish_capturing), with the exit status.
    pub(crate) async fn stop_capturing(&mut self) -> (std::process::ExitStatus, String) {
        let reader = self
            .stderr
            .take()
            .expect("the hub was started with start_capturing");
        self.terminate();
        let status = self.wait(Duration::from_secs(30)).await;
        let log = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("stderr reaches its end once the hub has exited")
            .unwrap();
        (status, log)
    }

    async fn launch(
        holder: std::sync::Arc<tempfile::TempDir>,
        path: &std::path::Path,
        listen: &str,
        args: &[&str],
        capture: bool,
    ) -> TestHub {
        let data_dir = holder;
        let mut command = Command::new(env!("CARGO_BIN_EXE_ssehub"));
        command.args(["serve", "--listen", listen]);
        if !args.contains(&"--log") {
            command.args(["--log", "warn"]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("the ssehub binary starts");
        let stderr = child.stderr.take().map(|mut pipe| {
            tokio::spawn(async move {
                let mut text = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut text).await;
                String::from_utf8_lossy(&text).into_owned()
            })
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = listen_url(&mut lines).await;
        TestHub {
            url,
            child,
            data_dir,
            stderr,
        }
    }

    /// Kills the process with SIGKILL and waits for it: a crash.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM (by PID: only this test's own process).
    pub(crate) fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) async fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the hub exits in time")
            .unwrap()
    }

    /// Publishes one event; returns its id.
    pub(crate) async fn publish(&self, topic: &str, data: &str) -> String {
        let response = client()
            .post(format!("{}/topics/{topic}", self.url))
            .body(data.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    /// The value of one metric line, e.g. `ssehub_slow_consumer_disconnects_total`.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        metric_of(&client(), &self.url, name).await
    }

    /// Waits until metric `name` is `want` (fails after 10 s): what a test waits for instead
    /// of sleeping, e.g. a connection that has been accepted or released.
    pub(crate) async fn metric_reaches(&self, name: &str, want: f64) {
        metric_of_reaches(&client(), &self.url, name, want).await;
    }

    /// Opens an SSE stream at `path` with optional `Last-Event-ID`.
    pub(crate) async fn subscribe(&self, path: &str, last_event_id: Option<&str>) -> Sse {
        let mut request = client().get(format!("{}{path}", self.url));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        Sse::new(response)
    }
}

/// The value of one metric line of the hub at `base` (labels included), read with `client`
/// (an HTTPS hub needs one that trusts its certificate).
pub(crate) async fn metric_of(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
        .parse()
        .unwrap()
}

/// Waits (at most 10 s) until [`metric_of`] is `want`.
pub(crate) async fn metric_of_reaches(client: &reqwest::Client, base: &str, name: &str, want: f64) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while metric_of(client, base, name).await != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{name} is not {want} after 10 s");
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open SSE stream, parsed with our own parser.
pub(crate) struct Sse {
    pub(crate) headers: reqwest::header::HeaderMap,
    body: Body,
    pub(crate) parser: Parser,
    pub(crate) ended: bool,
}

impl Sse {
    /// Reads the stream of a response (already checked to be one).
    pub(crate) fn new(response: reqwest::Response) -> Sse {
        Sse {
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            parser: Parser::new(),
            ended: false,
        }
    }

    /// The next `n` events (fails after 10 s without one).
    pub(crate) async fn take(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            self.read_into(&mut out, Duration::from_secs(10)).await;
            assert!(
                !self.ended || out.len() >= n,
                "stream ended after {} events",
                out.len()
            );
        }
        out
    }

    /// Reads until the stream ends (fails after `limit`).
    pub(crate) async fn until_end(&mut self, limit: Duration) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while !self.ended {
            self.read_into(&mut out, limit).await;
        }
        out
    }

    /// Reads one chunk; panics when none arrives within `limit`.
    async fn read_into(&mut self, out: &mut Vec<MessageEvent>, limit: Duration) {
        assert!(
            self.try_read_into(out, limit).await,
            "bytes arrive within {limit:?}"
        );
    }

    /// Reads one chunk; false when none arrived within `limit`.
    async fn try_read_into(&mut self, out: &mut Vec<MessageEvent>, limit: Duration) -> bool {
        let Ok(chunk) = tokio::time::timeout(limit, self.body.next()).await else {
            return false;
        };
        match chunk {
            Some(Ok(bytes)) => {
                self.parser.feed(&bytes);
                while let Some(frame) = self.parser.next() {
                    if let Frame::Event(e) = frame.unwrap() {
                        out.push(e);
                    }
                }
            }
            Some(Err(_)) | None => {
                self.parser.end_body();
                self.ended = true;
            }
        }
        true
    }

    /// Asserts that no event arrives for `quiet`.
    pub(crate) async fn nothing_for(&mut self, quiet: Duration) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + quiet;
        while !self.ended {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.try_read_into(&mut out, left).await {
                break;
            }
        }
        assert!(out.is_empty(), "unexpected events {out:?}");
    }
}

pub(crate) fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

/// The sequence number in an ssehub id (`<log>-<seq>`).
pub(crate) fn seq(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}
