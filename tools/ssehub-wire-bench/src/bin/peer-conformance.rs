//! Runs the 181 SSE conformance vectors against ssehub-wire and every peer parser, and prints
//! one `Report::summary()` line per crate, a Markdown table of pass counts per mode, and
//! whether ssehub-wire is still the only parser passing every vector in every mode.
//!
//! ```text
//! cargo run --release -p ssehub-wire-bench --bin peer-conformance [-- --failures]
//! ```
//!
//! No peer can take the run down with it: each parser runs in its own child process (this
//! binary with `--subject NAME`), so an abort or a stack overflow only fails that crate; each
//! parse runs on its own thread with a deadline, so a parser that hangs or loops on one vector
//! fails that vector (after three such hangs the crate's remaining runs are skipped); panics
//! are caught by the harness and count as failures.
//!
//! Exits non-zero only when ssehub-wire itself fails a vector: what the peers do is reported,
//! never asserted, since new releases may change it.

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use ssehub_conformance::{Outcome, Subject, run_all, vectors};
use ssehub_wire_bench::peers::{self, Peer};

/// How long one parse of one vector may take before it counts as a hang.
const RUN_DEADLINE: Duration = Duration::from_secs(10);
/// Hangs after which a crate's remaining runs are skipped.
const MAX_HANGS: usize = 3;
/// How long one crate's whole run may take.
const SUBJECT_DEADLINE: Duration = Duration::from_secs(600);

const OURS: &str = "ssehub-wire";

/// A peer whose every parse runs on a fresh thread with a deadline.
struct Guarded {
    peer: Peer,
    hangs: usize,
    deadline: Duration,
}

impl Guarded {
    fn new(peer: Peer) -> Self {
        Guarded {
            peer,
            hangs: 0,
            deadline: RUN_DEADLINE,
        }
    }
}

impl Subject for Guarded {
    fn name(&self) -> &str {
        self.peer.name
    }

    fn exposes_retry(&self) -> bool {
        self.peer.exposes_retry
    }

    fn parse(&mut self, chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        if self.hangs >= MAX_HANGS {
            return Outcome {
                error: Some(format!("skipped: the parser hung {MAX_HANGS} times")),
                ..Outcome::default()
            };
        }
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let initial = initial_last_event_id.to_string();
        let parse = self.peer.conformance;
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let slices: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let _ = tx.send(parse(&slices, &initial));
        });
        match rx.recv_timeout(self.deadline) {
            Ok(outcome) => {
                let _ = worker.join();
                outcome
            }
            // The worker panicked: hand the panic to the harness, which records it.
            Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => Outcome {
                    error: Some("the parser thread ended without a result".to_string()),
                    ..Outcome::default()
                },
            },
            // The worker is left running (a thread cannot be killed); the process ends soon.
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.hangs += 1;
                Outcome {
                    error: Some(format!(
                        "no result after {:?}: hung or looping",
                        self.deadline
                    )),
                    ..Outcome::default()
                }
            }
        }
    }
}

/// Child mode: run one crate and print its summary and counts.
fn run_subject(name: &str, failures: bool) -> ExitCode {
    let Some(peer) = peers::by_name(name) else {
        eprintln!("unknown subject {name:?}");
        return ExitCode::from(2);
    };
    // Peers panic on some vectors; the harness records each panic's message, so the default
    // hook's output would only be noise.
    std::panic::set_hook(Box::new(|_| {}));
    let vectors = vectors();
    let mut subject = Guarded::new(peer);
    let report = run_all(&mut subject, &vectors);
    if failures {
        for f in &report.failures {
            let mut reason = f.reason.clone();
            if reason.len() > 300 {
                let mut end = 300;
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
                reason.push('…');
            }
            println!(
                "FAIL {} {} [{}] chunks {:?}: {reason}",
                report.subject,
                f.vector,
                f.mode.label(),
                f.chunk_lens
            );
        }
    }
    println!("SUMMARY {}", report.summary());
    let modes: Vec<_> = report
        .per_mode
        .iter()
        .map(|(mode, pass, total, runs)| json!([mode.label(), pass, total, runs]))
        .collect();
    println!(
        "COUNTS {}",
        json!({
            "name": report.subject,
            "passed_all": report.passed_all,
            "vectors": report.vectors,
            "modes": modes,
            "hangs": subject.hangs,
        })
    );
    ExitCode::SUCCESS
}

/// What one child reported, or why it did not.
struct Result {
    name: &'static str,
    summary: Option<String>,
    counts: Option<serde_json::Value>,
    problem: Option<String>,
}

/// Runs one crate in a child process with a deadline, passing its `FAIL` lines through.
fn run_child(name: &'static str, failures: bool) -> Result {
    let mut result = Result {
        name,
        summary: None,
        counts: None,
        problem: None,
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            result.problem = Some(format!("cannot find this binary: {e}"));
            return result;
        }
    };
    let mut command = Command::new(exe);
    command.args(["--subject", name]);
    if failures {
        command.arg("--failures");
    }
    let mut child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            result.problem = Some(format!("cannot start: {e}"));
            return result;
        }
    };
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > SUBJECT_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                result.problem = Some(format!("cannot wait: {e}"));
                return result;
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    for line in stdout.lines() {
        if let Some(summary) = line.strip_prefix("SUMMARY ") {
            result.summary = Some(summary.to_string());
        } else if let Some(counts) = line.strip_prefix("COUNTS ") {
            result.counts = serde_json::from_str(counts).ok();
        } else if line.starts_with("FAIL ") {
            println!("{line}");
        }
    }
    match status {
        None => {
            result.problem = Some(format!(
                "killed after {SUBJECT_DEADLINE:?} without finishing"
            ));
        }
        Some(status) if !status.success() || result.counts.is_none() => {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            result.problem = Some(format!(
                "crashed ({status}){}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.join(" | "))
                }
            ));
        }
        Some(_) => {}
    }
    result
}

fn markdown(results: &[Result]) -> String {
    let mut out = String::from(
        "| crate | all modes | whole/given chunks | byte by byte | two-way splits | upstream chunk sizes |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let Some(c) = &r.counts else {
            out.push_str(&format!(
                "| {} | {} | | | | |\n",
                r.name,
                r.problem.as_deref().unwrap_or("no result")
            ));
            continue;
        };
        let mut cells = vec![format!("{}/{}", c["passed_all"], c["vectors"])];
        for m in c["modes"].as_array().into_iter().flatten() {
            cells.push(format!("{}/{}", m[1], m[2]));
        }
        out.push_str(&format!("| {} | {} |\n", r.name, cells.join(" | ")));
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let failures = args.iter().any(|a| a == "--failures");
    if let Some(i) = args.iter().position(|a| a == "--subject") {
        let Some(name) = args.get(i + 1) else {
            eprintln!("--subject needs a crate name");
            return ExitCode::from(2);
        };
        return run_subject(name, failures);
    }
    if let Some(unknown) = args.iter().find(|a| *a != "--failures") {
        eprintln!("usage: peer-conformance [--failures]   (unknown argument {unknown:?})");
        return ExitCode::from(2);
    }

    let mut results = Vec::new();
    for peer in peers::all() {
        let result = run_child(peer.name, failures);
        match (&result.summary, &result.problem) {
            (Some(summary), None) => println!("{summary}"),
            (Some(summary), Some(problem)) => println!("{summary} ({problem})"),
            (None, problem) => println!(
                "{}: no report: {}",
                peer.name,
                problem.as_deref().unwrap_or("unknown")
            ),
        }
        results.push(result);
    }
    println!();
    print!("{}", markdown(&results));
    println!();

    let all_pass = |r: &Result| {
        r.problem.is_none()
            && r.counts
                .as_ref()
                .is_some_and(|c| c["passed_all"] == c["vectors"] && c["vectors"] == 181)
    };
    let ours_ok = results.iter().any(|r| r.name == OURS && all_pass(r));
    let others: Vec<&str> = results
        .iter()
        .filter(|r| r.name != OURS && all_pass(r))
        .map(|r| r.name)
        .collect();
    match (ours_ok, others.is_empty()) {
        (true, true) => {
            println!(
                "claim holds: {OURS} is the only parser that passes all 181 vectors in every mode"
            );
            ExitCode::SUCCESS
        }
        (true, false) => {
            println!(
                "claim does not hold: {} also {} all 181 vectors in every mode",
                others.join(", "),
                if others.len() == 1 { "passes" } else { "pass" }
            );
            ExitCode::SUCCESS
        }
        (false, _) => {
            println!("{OURS} does not pass all 181 vectors in every mode");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssehub_wire_bench::peers::Tally;

    fn no_tally(_: &[&[u8]]) -> Tally {
        Tally::default()
    }

    fn hangs(_: &[&[u8]], _: &str) -> Outcome {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    fn panics(_: &[&[u8]], _: &str) -> Outcome {
        panic!("boom")
    }

    fn guarded(
        name: &'static str,
        conformance: fn(&[&[u8]], &str) -> Outcome,
        deadline: Duration,
    ) -> Guarded {
        Guarded {
            deadline,
            ..Guarded::new(Peer {
                name,
                tally: no_tally,
                conformance,
                exposes_retry: true,
            })
        }
    }

    /// A parser that hangs fails its runs (and after three hangs is skipped) instead of
    /// stopping the run.
    #[test]
    fn a_hanging_parser_fails_instead_of_stopping_the_run() {
        let vectors: Vec<_> = vectors().into_iter().take(5).collect();
        let mut subject = guarded("hangs", hangs, Duration::from_millis(50));
        let report = run_all(&mut subject, &vectors);
        assert_eq!(report.passed_all, 0);
        assert_eq!(subject.hangs, MAX_HANGS);
        assert!(report.failures[0].reason.contains("hung or looping"));
        assert!(report.failures.iter().any(|f| f.reason.contains("skipped")));
    }

    /// A panic on the parser's thread reaches the harness, which records it.
    #[test]
    fn a_panicking_parser_fails_with_its_message() {
        let vectors: Vec<_> = vectors().into_iter().take(2).collect();
        let report = run_all(&mut guarded("panics", panics, RUN_DEADLINE), &vectors);
        assert_eq!(report.passed_all, 0);
        assert!(
            report.failures[0].reason.contains("panicked: boom"),
            "{}",
            report.failures[0].reason
        );
    }
}
