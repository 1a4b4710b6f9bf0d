//! `ssehub decode`, black-box: the conformance vectors through the real binary, and streaming.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ssehub_conformance::{ExpectedEvent, Mode, Outcome, Subject, check, vectors};

fn decode() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssehub"));
    cmd.arg("decode");
    cmd
}

/// The binary as a parser under test: one process per body.
struct Binary;

impl Subject for Binary {
    fn name(&self) -> &str {
        "ssehub decode"
    }

    fn exposes_retry(&self) -> bool {
        false
    }

    fn parse(&mut self, chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut child = decode()
            .args(["--comments", "--last-event-id", initial_last_event_id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for chunk in chunks {
            stdin.write_all(chunk).unwrap();
            stdin.flush().unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let mut outcome = Outcome {
            comments: Some(Vec::new()),
            ..Outcome::default()
        };
        if !out.status.success() || !out.stderr.is_empty() {
            outcome.error = Some(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(comment) = value.get("comment") {
                let comment = comment.as_str().unwrap().to_string();
                outcome.comments.as_mut().unwrap().push(comment);
            } else {
                outcome
                    .events
                    .push(serde_json::from_value::<ExpectedEvent>(value).unwrap());
            }
        }
        outcome
    }
}

#[test]
fn every_vector_through_the_binary() {
    let mut failures = Vec::new();
    let vectors = vectors();
    for vector in &vectors {
        for chunks in Mode::Given.chunkings(vector) {
            if let Err(reason) = check(&mut Binary, vector, &chunks) {
                failures.push(format!("{}: {reason}", vector.name));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    println!(
        "ssehub decode: {}/{} vectors pass",
        vectors.len(),
        vectors.len()
    );
}

/// Each event is printed as soon as it is complete, while stdin is still open.
#[test]
fn prints_events_as_they_complete() {
    let mut child = decode()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    stdin
        .write_all(b"id: 1\nevent: greeting\ndata: hello\n\n")
        .unwrap();
    stdin.flush().unwrap();
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("event printed before EOF");
    assert_eq!(
        line,
        r#"{"type":"greeting","data":"hello","last_event_id":"1"}"#
    );
    stdin.write_all(b"data: partial").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    assert!(
        rx.try_recv().is_err(),
        "an incomplete final event is not printed"
    );
}

/// A line over the limit is reported on stderr; decoding goes on and exits 0.
#[test]
fn limit_breach_warns_and_continues() {
    let mut child = decode()
        .args(["--max-line-bytes", "16"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"data: this line is far too long\n\ndata: ok\n\n")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"type\":\"message\",\"data\":\"ok\",\"last_event_id\":\"\"}\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeds the limit of 16 bytes"));
}
