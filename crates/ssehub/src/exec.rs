//! `ssehub exec --topic T -- CMD ARGS...`: run a command, publish its output as it comes.
//!
//! CMD's stdout and stderr are pipes; every chunk read from them is first written unchanged
//! to our own stdout or stderr (so `exec` is transparent in a terminal or a CI log, whatever
//! the hub does), then split into lines published as events of type `stdout` and `stderr`.
//! One publisher takes both, so their relative order is the order the lines were read. When
//! CMD has exited and its output is read, an `exit` event follows, with data `{"code": N}`, or
//! `{"signal": N}` when a signal ended it; then `exec` exits with CMD's code (128 + N for a
//! signal).
//!
//! CMD never waits for the hub: when the hub is slow or unreachable, lines are buffered up to
//! the bound and the newest are dropped beyond it, with warnings on stderr. A refusal that
//! retrying cannot fix (a 400) stops CMD (SIGTERM) and exits 125; CMD not found exits 127,
//! CMD not executable 126, like a shell. SIGTERM is passed on to CMD; SIGINT is not (Ctrl-C
//! in a terminal reaches CMD directly): `exec` waits for CMD to end either way, then publishes
//! its exit.
//!
//! Output still arriving after CMD exited (from a process it left running with our pipes) is
//! read for at most [`DRAIN_AFTER_EXIT`], so such a process cannot keep `exec` running.

use std::ffi::OsStr;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;

use ssehub_client::{LineOptions, LinePublisher, LineSplitter};

use crate::cli::{ExecArgs, LineBufferArgs};

const NAME: &str = "ssehub exec";
/// How long output is still read once CMD has exited.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// `exec` itself failed (as `env` and `timeout` use it).
const OWN_FAILURE: u8 = 125;

/// Runs the command; the exit code is CMD's (or 125, 126, 127).
pub(crate) fn main(args: &ExecArgs) -> ExitCode {
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("{NAME}: {error:#}");
            ExitCode::from(OWN_FAILURE)
        }
    }
}

fn run(args: &ExecArgs) -> anyhow::Result<u8> {
    ssehub_core::Topic::new(&args.topic)
        .map_err(|e| anyhow::anyhow!("invalid topic {:?}: {e}", args.topic))?;
    let options = line_options(&args.buffer)?;
    let runtime = crate::client_runtime()?;
    runtime.block_on(exec(args, options))
}

/// The bounds of the line buffer, from `--max-buffered-lines`, `--max-buffered-bytes` and
/// `--flush-timeout` (`tail` takes the same flags).
pub(crate) fn line_options(args: &LineBufferArgs) -> anyhow::Result<LineOptions> {
    let flush_timeout = Duration::try_from_secs_f64(args.flush_timeout).map_err(|_| {
        anyhow::anyhow!(
            "--flush-timeout must be a number of seconds, 0 or more (got {})",
            args.flush_timeout
        )
    })?;
    Ok(LineOptions {
        max_lines: usize::try_from(args.max_buffered_lines).unwrap_or(usize::MAX),
        max_bytes: usize::try_from(args.max_buffered_bytes).unwrap_or(usize::MAX),
        flush_timeout,
    })
}

async fn exec(args: &ExecArgs, options: LineOptions) -> anyhow::Result<u8> {
    let publisher = LinePublisher::start(args.hub.client()?, args.topic.clone(), NAME, options);
    let mut signals = Signals::new()?;
    let (program, program_args) = args
        .command
        .split_first()
        .context("no command given (ssehub exec --topic T -- CMD ARGS...)")?;
    let spawned = tokio::process::Command::new(program)
        .args(program_args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let (code, why) = match error.kind() {
                std::io::ErrorKind::NotFound => (127, "command not found".to_string()),
                std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
                _ => (126, error.to_string()),
            };
            let message = format!("{NAME}: cannot run {}: {why}", quoted(program));
            eprintln!("{message}");
            // Whoever watches the topic learns it too.
            publisher.push_past_bound("stderr", message);
            publisher.push_past_bound("exit", exit_data(code.into(), None));
            let report = publisher.finish().await;
            if let Some(error) = report.fatal {
                eprintln!("{NAME}: {error}");
            }
            return Ok(code);
        }
    };
    let stdout = child.stdout.take().context("the child's stdout")?;
    let stderr = child.stderr.take().context("the child's stderr")?;
    let (exited_tx, exited) = watch::channel(false);

    let wait = async {
        let mut refused = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status.context("cannot wait for the command")?,
                () = signals.terminate() => stop(&child),
                error = publisher.failed(), if refused.is_none() => {
                    eprintln!("{NAME}: {error}; stopping the command");
                    stop(&child);
                    refused = Some(error);
                }
            }
        };
        exited_tx.send_replace(true);
        anyhow::Ok((status, refused))
    };
    let (_, _, waited) = tokio::join!(
        pump(
            stdout,
            tokio::io::stdout(),
            "stdout",
            &publisher,
            exited.clone()
        ),
        pump(stderr, tokio::io::stderr(), "stderr", &publisher, exited),
        wait,
    );
    let (status, refused) = waited?;
    let (code, signal) = exit_code(status);
    publisher.push_past_bound("exit", exit_data(code, signal));
    let report = publisher.finish().await;
    if refused.is_some() {
        return Ok(OWN_FAILURE);
    }
    if let Some(error) = report.fatal {
        eprintln!("{NAME}: {error}");
        return Ok(OWN_FAILURE);
    }
    if !report.complete() {
        eprintln!(
            "{NAME}: warning: the hub did not get all of the output (see above); \
             the exit code is the command's"
        );
    }
    Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(u8::MAX))
}

/// Copies `pipe` to `passthrough` as it comes, and publishes its lines as `event` events.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    mut passthrough: impl AsyncWrite + Unpin,
    event: &'static str,
    publisher: &LinePublisher,
    mut exited: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut splitter = LineSplitter::new();
    let mut passing = true;
    let mut drain_until = None;
    loop {
        if drain_until.is_none() && *exited.borrow() {
            drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
        }
        let read = match drain_until {
            Some(deadline) => match tokio::time::timeout_at(deadline, pipe.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    eprintln!(
                        "{NAME}: the command has exited, but a process it started still \
                             holds its {event} open; not waiting for it"
                    );
                    break;
                }
            },
            None => tokio::select! {
                read = pipe.read(&mut buf) => read,
                // Exited (or the sender is gone, which comes after): drain with a deadline.
                _ = exited.changed() => {
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                    continue;
                }
            },
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) => {
                eprintln!("{NAME}: cannot read the command's {event}: {error}");
                break;
            }
        };
        if passing {
            let written = async {
                passthrough.write_all(&buf[..n]).await?;
                passthrough.flush().await
            };
            // Our own output closed (piped into `head`): keep publishing regardless.
            passing = written.await.is_ok();
        }
        splitter.feed(&buf[..n], |line| {
            publisher.push(event, line);
        });
    }
    if let Some(line) = splitter.finish() {
        publisher.push(event, line);
    }
}

/// CMD's exit code (128 + N for signal N), and the signal.
fn exit_code(status: ExitStatus) -> (i32, Option<i32>) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return (128 + signal, Some(signal));
        }
    }
    (status.code().unwrap_or(OWN_FAILURE.into()), None)
}

/// The data of the `exit` event.
fn exit_data(code: i32, signal: Option<i32>) -> String {
    match signal {
        Some(signal) => serde_json::json!({ "signal": signal }),
        None => serde_json::json!({ "code": code }),
    }
    .to_string()
}

fn quoted(program: &OsStr) -> String {
    format!("{:?}", program.to_string_lossy())
}

/// Asks the command to end (SIGTERM).
fn stop(child: &tokio::process::Child) {
    let Some(pid) = child.id() else { return };
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process};
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::TERM);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// The signals `exec` reacts to while CMD runs. SIGINT is taken (so that Ctrl-C, which
/// reaches CMD too, does not end `exec` before CMD) and otherwise ignored.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    _int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                _int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next SIGTERM.
    async fn terminate(&mut self) {
        #[cfg(unix)]
        self.term.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
