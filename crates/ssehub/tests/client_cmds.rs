//! The client commands (`pub`, `sub`, `tail`, `exec`) through the real binary, against the
//! real hub.

use std::process::{Output, Stdio};
use std::time::Duration;

use ssehub_wire::MessageEvent;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::util::{TestHub, data};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);

fn ssehub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssehub"));
    command.env_remove("SSEHUB_URL").kill_on_drop(true);
    command
}

/// Runs `ssehub args...` to its end (at most `LIMIT`).
async fn run(args: &[&str]) -> Output {
    let output = ssehub().args(args).stdin(Stdio::null()).output();
    tokio::time::timeout(LIMIT, output)
        .await
        .expect("ssehub ends in time")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends SIGTERM to a child of this test.
fn terminate(child: &Child) {
    signal(child, "-TERM");
}

/// Sends a signal (`-INT`, `-TERM`) to a child of this test (by PID).
fn signal(child: &Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait(child: &mut Child) -> std::process::ExitStatus {
    tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("the process exits in time")
        .unwrap()
}

fn types(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// 10,000 lines of a command reach a subscriber in order, then the exit event; `exec` passes
/// them through and exits with the command's code.
#[tokio::test]
async fn exec_publishes_every_line_in_order_then_the_exit() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/topics/builds/1/log?lastEventId=earliest", None)
        .await;
    let script = "i=0; while [ $i -lt 10000 ]; do echo line-$i; i=$((i+1)); done";
    let exec = ssehub()
        .args(["exec", "--hub", &hub.url, "--topic", "builds/1/log", "--"])
        .args(["sh", "-c", script])
        .stdin(Stdio::null())
        .output();
    let (output, events) = tokio::join!(exec, sub.take(10_001));
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let expected: Vec<String> = (0..10_000).map(|i| format!("line-{i}")).collect();
    assert_eq!(data(&events[..10_000]), expected, "every line, in order");
    assert!(types(&events[..10_000]).iter().all(|t| *t == "stdout"));
    assert_eq!(events[10_000].event_type, "exit");
    assert_eq!(events[10_000].data, r#"{"code":0}"#);
    assert_eq!(
        text(&output.stdout),
        expected
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        "the output is passed through unchanged"
    );
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// stdout and stderr lines get their own types; a non-zero code, a signal and a missing
/// command are reported and become `exec`'s code.
#[tokio::test]
async fn exec_reports_stdout_stderr_and_the_exit() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/topics/jobs/x?lastEventId=earliest", None)
        .await;
    let exec = |script: &'static str| {
        let url = hub.url.clone();
        async move {
            run(&[
                "exec", "--hub", &url, "--topic", "jobs/x", "--", "sh", "-c", script,
            ])
            .await
        }
    };

    let output = exec("echo out; echo err >&2; printf 'no newline'; exit 3").await;
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text(&output.stdout), "out\nno newline");
    assert_eq!(text(&output.stderr), "err\n");
    let events = sub.take(4).await;
    // Two pipes have no order between them; within each, lines keep theirs.
    let mut lines: Vec<(&str, &str)> = events[..3]
        .iter()
        .map(|e| (e.event_type.as_str(), e.data.as_str()))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            ("stderr", "err"),
            ("stdout", "no newline"),
            ("stdout", "out")
        ]
    );
    let stdout: Vec<&str> = events[..3]
        .iter()
        .filter(|e| e.event_type == "stdout")
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(stdout, ["out", "no newline"]);
    assert_eq!(events[3].event_type, "exit");
    assert_eq!(events[3].data, r#"{"code":3}"#);

    let output = exec("echo bye; kill -TERM $$").await;
    assert_eq!(output.status.code(), Some(128 + 15), "128 + SIGTERM");
    let events = sub.take(2).await;
    assert_eq!(types(&events), ["stdout", "exit"]);
    assert_eq!(events[1].data, r#"{"signal":15}"#);

    let output = run(&[
        "exec",
        "--hub",
        &hub.url,
        "--topic",
        "jobs/x",
        "--",
        "ssehub-no-such-command",
    ])
    .await;
    assert_eq!(output.status.code(), Some(127));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("\"ssehub-no-such-command\": command not found"),
        "{stderr}"
    );
    let events = sub.take(2).await;
    assert_eq!(types(&events), ["stderr", "exit"]);
    assert_eq!(events[1].data, r#"{"code":127}"#);
}

/// Lines published while the hub restarts wait in the buffer and go out, in order, once it is
/// back: each failed batch is retried before anything after it.
#[tokio::test]
async fn exec_keeps_lines_while_the_hub_restarts() {
    let mut hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/topics/slow?lastEventId=earliest", None)
        .await;
    let script = "i=0; while [ $i -lt 60 ]; do echo l-$i; i=$((i+1)); sleep 0.05; done";
    let mut exec = ssehub()
        .args(["exec", "--hub", &hub.url, "--topic", "slow", "--"])
        .args(["sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(exec.stderr.take().unwrap()).lines();
    assert_eq!(data(&sub.take(5).await), numbered("l", 0..5));
    let listen = hub.url.strip_prefix("http://").unwrap().to_string();
    let dir = hub.data_dir.clone();
    hub.terminate();
    hub.wait(LIMIT).await;
    // The hub stays down until exec has found out.
    let failed = async {
        while let Some(line) = said.next_line().await.unwrap() {
            if line.contains("warning: cannot reach the hub") {
                return;
            }
        }
        panic!("exec ended without a warning");
    };
    tokio::time::timeout(LIMIT, failed).await.unwrap();
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = said.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let hub = TestHub::start_in(dir, &listen, &[]).await;
    let mut sub = hub
        .subscribe("/topics/slow?lastEventId=earliest", None)
        .await;
    let output = tokio::time::timeout(LIMIT, exec.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = rest.await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("publishing resumed"), "{stderr}");
    let events = sub.take(61).await;
    assert_eq!(
        data(&events[..60]),
        numbered("l", 0..60),
        "in order, once each"
    );
    assert_eq!(events[60].event_type, "exit");
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// With no hub to talk to, the command still runs, its output still shows, its code is kept,
/// and the lost lines are reported — never silently.
#[tokio::test]
async fn exec_without_a_hub_still_runs_the_command() {
    let output = ssehub()
        .env("SSEHUB_URL", "http://127.0.0.1:1")
        .args([
            "exec",
            "--topic",
            "t",
            "--flush-timeout",
            "0.5",
            "--max-buffered-lines",
            "10",
            "--",
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; seq 100; exit 4",
        ])
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(LIMIT, output).await.unwrap().unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("to-stdout\n1\n2\n"), "{stdout}");
    assert!(stdout.ends_with("\n99\n100\n"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("to-stderr\n"), "{stderr}");
    assert!(
        stderr.contains("warning: cannot reach the hub at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("buffer is full"), "{stderr}");
    assert!(stderr.contains("were not delivered"), "{stderr}");
}

/// A topic the hub would refuse stops `exec` before the command runs.
#[tokio::test]
async fn exec_with_a_bad_topic_does_not_run_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let output = run(&[
        "exec",
        "--hub",
        "http://127.0.0.1:1",
        "--topic",
        "a//b",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(125));
    assert!(text(&output.stderr).contains("invalid topic"));
    assert!(!marker.exists());
}

/// Reads `tail`'s stderr until it says it follows the file (or waits for it).
async fn tail_ready(child: &mut Child) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("following") || line.contains("waiting for") {
                return lines;
            }
        }
        panic!("tail ended before it was ready");
    };
    let mut lines = tokio::time::timeout(LIMIT, ready)
        .await
        .expect("tail starts");
    // Keep draining (and showing) what it says next.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[tail] {line}");
        }
    });
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn numbered(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn as_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Waits for `lines` to arrive next at `sub`, exactly, and adds them to `seen`.
async fn expect(sub: &mut crate::util::Sse, seen: &mut Vec<String>, lines: Vec<String>) {
    let got = sub.take(lines.len()).await;
    assert_eq!(data(&got), lines, "after {} lines", seen.len());
    seen.extend(lines);
}

/// `tail` follows a growing file through a rotation, a truncation and a delete-and-recreate:
/// every line exactly once, in order; lines already there at the start are not published.
#[tokio::test]
async fn tail_follows_rotation_and_truncation() {
    let hub = TestHub::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "old-0\nold-1\n");
    let mut sub = hub
        .subscribe("/topics/logs/app?lastEventId=earliest", None)
        .await;
    let mut tail = ssehub()
        .args(["tail", "--hub", &hub.url, "--topic", "logs/app"])
        .args(["--poll-ms", "50"])
        .arg(&path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tail_ready(&mut tail).await;
    let mut seen = Vec::new();

    // Growing, with CRLF and a line written in two parts.
    let a = numbered("a", 0..100);
    append(&path, &as_text(&a[..50]));
    append(&path, &as_text(&a[50..99]).replace('\n', "\r\n"));
    append(&path, "a-9");
    append(&path, "9\n");
    expect(&mut sub, &mut seen, a).await;

    // Rotation: moved away, written to a little more, then a new file.
    let rotated = dir.path().join("app.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let r = numbered("r", 0..10);
    append(&rotated, &as_text(&r));
    let b = numbered("b", 0..50);
    append(&path, &as_text(&b));
    expect(&mut sub, &mut seen, [r, b].concat()).await;

    // Truncation (as copytruncate does): shorter content, then more.
    std::fs::write(&path, "c-0\nc-1\n").unwrap();
    expect(&mut sub, &mut seen, numbered("c", 0..2)).await;
    let c = numbered("c", 2..20);
    append(&path, &as_text(&c));
    expect(&mut sub, &mut seen, c).await;

    // Deleted, then created again.
    std::fs::remove_file(&path).unwrap();
    let d = numbered("d", 0..5);
    append(&path, &as_text(&d));
    expect(&mut sub, &mut seen, d).await;
    assert_eq!(seen.len(), 100 + 10 + 50 + 20 + 5);

    terminate(&tail);
    assert_eq!(wait(&mut tail).await.code(), Some(0));
    sub.nothing_for(Duration::from_millis(300)).await;
}

/// `--from-start` publishes what is there; a file that does not exist yet is waited for; a
/// partial last line is published when `tail` stops.
#[tokio::test]
async fn tail_from_start_waits_for_the_file_and_flushes_on_exit() {
    let hub = TestHub::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.log");
    let mut sub = hub
        .subscribe("/topics/logs/later?lastEventId=earliest", None)
        .await;
    let mut tail = ssehub()
        .env("SSEHUB_URL", &hub.url)
        .args(["tail", "--topic", "logs/later", "--from-start"])
        .args(["--poll-ms", "50"])
        .arg(&path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tail_ready(&mut tail).await; // "waiting for …"
    append(&path, "first\nsecond\nno newline yet");
    assert_eq!(data(&sub.take(2).await), ["first", "second"]);
    sub.nothing_for(Duration::from_millis(300)).await;
    terminate(&tail);
    assert_eq!(wait(&mut tail).await.code(), Some(0));
    assert_eq!(data(&sub.take(1).await), ["no newline yet"]);

    // Existing content, from the start.
    let mut tail = ssehub()
        .args([
            "tail",
            "--hub",
            &hub.url,
            "--topic",
            "logs/later",
            "--from-start",
        ])
        .arg(&path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tail_ready(&mut tail).await;
    assert_eq!(data(&sub.take(2).await), ["first", "second"]);
    terminate(&tail);
    assert_eq!(wait(&mut tail).await.code(), Some(0));
}

/// `pub` prints the new id; the data comes from the argument or stdin; a bad topic fails
/// with the hub's own message.
#[tokio::test]
async fn pub_prints_the_id_and_reports_refusals() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/topics/news?lastEventId=earliest", None)
        .await;

    let output = run(&["pub", "--hub", &hub.url, "news", "hello"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let id = text(&output.stdout);
    let id = id.strip_suffix('\n').expect("one line");

    let mut piped = ssehub()
        .env("SSEHUB_URL", &hub.url)
        .args(["pub", "news", "--event", "note"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = piped.stdin.take().unwrap();
    stdin.write_all(b"from stdin\nsecond line\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(LIMIT, piped.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    let second_id = text(&output.stdout).trim_end().to_string();

    let events = sub.take(2).await;
    assert_eq!(events[0].data, "hello");
    assert_eq!(events[0].last_event_id, id);
    assert_eq!(events[1].event_type, "note");
    assert_eq!(events[1].data, "from stdin\nsecond line");
    assert_eq!(events[1].last_event_id, second_id);

    let output = run(&["pub", "--hub", &hub.url, "news//bad", "x"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("400 invalid_topic"),
        "{stderr}"
    );
    assert!(
        stderr.contains("empty segment"),
        "the hub's own words: {stderr}"
    );
    assert!(output.stdout.is_empty());
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// `pub --id` gives the event the publisher's id (printed back, and the SSE id); a second
/// `pub` with the same id fails with the hub's 409.
#[tokio::test]
async fn pub_with_an_id() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut sub = hub
        .subscribe("/topics/news?lastEventId=earliest", None)
        .await;
    let output = run(&[
        "pub", "--hub", &hub.url, "news", "hello", "--id", "rev 1/é", "--event", "t",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "rev 1/é\n");
    let events = sub.take(1).await;
    assert_eq!(
        (
            events[0].last_event_id.as_str(),
            events[0].event_type.as_str()
        ),
        ("rev 1/é", "t")
    );
    let output = run(&["pub", "--hub", &hub.url, "news", "again", "--id", "rev 1/é"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("409 id_conflict"), "{stderr}");
    sub.nothing_for(Duration::from_millis(100)).await;
}

/// The next JSON line `sub` prints (at most `LIMIT`).
async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> serde_json::Value {
    let line = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("sub prints the next event in time")
        .unwrap()
        .expect("sub is still running");
    serde_json::from_str(&line).unwrap()
}

/// `sub` across a restart of a durable hub: it reconnects and resumes, nothing lost or doubled.
#[tokio::test]
async fn sub_resumes_across_a_hub_restart() {
    let mut hub = TestHub::start(&[]).await;
    let mut sub = ssehub()
        .args([
            "sub",
            "--hub",
            &hub.url,
            "--json",
            "--last-event-id",
            "earliest",
        ])
        .arg("restart/t")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut got = Vec::new();
    for i in 1..=5 {
        hub.publish("restart/t", &i.to_string()).await;
    }
    for _ in 0..5 {
        got.push(next_json(&mut lines).await);
    }

    let listen = hub.url.strip_prefix("http://").unwrap().to_string();
    let dir = hub.data_dir.clone();
    hub.terminate();
    hub.wait(LIMIT).await;
    let hub = TestHub::start_in(dir, &listen, &[]).await;
    for i in 6..=10 {
        hub.publish("restart/t", &i.to_string()).await;
    }
    for _ in 0..5 {
        got.push(next_json(&mut lines).await);
    }
    let data: Vec<&str> = got.iter().map(|e| e["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    assert!(got.iter().all(|e| e["type"] == "message"));
    let extra = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await;
    assert!(extra.is_err(), "nothing more: {extra:?}");
    signal(&sub, "-INT"); // Ctrl-C
    let output = tokio::time::timeout(LIMIT, sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// `pub --key` and `pub --key --delete` keep a key's newest value and delete one; `sub
/// --snapshot` starts with the newest value of each key left.
#[tokio::test]
async fn pub_with_a_key_and_sub_with_a_snapshot() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    for args in [
        &["cur", "a1", "--key", "a"][..],
        &["cur", "b1", "--key", "b"],
        &["cur", "a2", "--key", "a"],
        &["cur", "--key", "b", "--delete"],
        &["cur", "c1", "--key", "c"],
    ] {
        let mut all = vec!["pub", "--hub", &hub.url];
        all.extend_from_slice(args);
        let output = run(&all).await;
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    let output = run(&[
        "sub",
        "--hub",
        &hub.url,
        "cur",
        "--snapshot",
        "--json",
        "--count",
        "2",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let got: Vec<String> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["data"].to_string())
        .collect();
    assert_eq!(got, ["\"a2\"", "\"c1\""]);
    let output = run(&["pub", "--hub", &hub.url, "cur", "--delete"]).await;
    assert!(!output.status.success(), "--delete needs --key");
}
