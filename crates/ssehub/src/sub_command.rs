//! `ssehub sub TOPIC...`: print events as they come, reconnecting and resuming by itself.
//! `ssehub sub --post BODY URL`: POST to a relay and print its answer, resuming it after a
//! cut, until its `ssehub-end` (the exit code says whether the answer was whole).
//!
//! Plain output prints each event's data on its own line (`stderr` events on stderr, events of
//! other types than `message`/`stdout` prefixed with `[type] `); `--json` prints one object per
//! event, the shape `ssehub decode` prints. Gap notices and reconnects are reported on stderr.
//!
//! A binary event (its type ends in `.b64`) is shown decoded: plainly as its type and size
//! (`[thumb] 65536 bytes`: raw bytes would garble a terminal), with `--json` as `data_base64`,
//! and with `--save-dir DIR` its bytes go to `DIR/<event id>` (the path is printed instead).
//! Ctrl-C or SIGTERM ends it cleanly.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use serde::Serialize;
use ssehub_client::{Error, Event, EventSource};

use crate::cli::SubArgs;

#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    /// A binary event's data, as the hub sent it (checked to be base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    binary: bool,
    last_event_id: &'a str,
}

/// Where a binary event's bytes go under `--save-dir`: `dir/<id>`, the id made a safe file
/// name (no separator, no `..`), `event` when the id is empty.
fn save_path(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert_str(0, "event");
    }
    dir.join(name)
}

pub(crate) fn run(args: &SubArgs) -> anyhow::Result<()> {
    let runtime = crate::client_runtime()?;
    runtime.block_on(subscribe(args))
}

/// The subscribe URL for `topics`.
fn url(hub: &str, topics: &[String]) -> String {
    let hub = hub.trim_end_matches('/');
    match topics {
        [one] => format!("{hub}/topics/{}", ssehub_client::encode_topic_path(one)),
        many => {
            let query: Vec<String> = many
                .iter()
                .map(|t| {
                    format!(
                        "topic={}",
                        form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                    )
                })
                .collect();
            format!("{hub}/subscribe?{}", query.join("&"))
        }
    }
}

async fn subscribe(args: &SubArgs) -> anyhow::Result<()> {
    let target = match &args.post {
        Some(_) => match args.topics.as_slice() {
            [url] => url.clone(),
            _ => anyhow::bail!("with --post, give exactly one URL (the relay's)"),
        },
        None => url(&args.hub.hub, &args.topics),
    };
    let mut target = target;
    if args.snapshot {
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str("snapshot=true");
    }
    let mut builder = EventSource::builder(target)
        .retry_server_errors(true)
        .reconnection_time(Duration::from_secs(1))
        // Three missed heartbeats (15 s each by default) mean the connection is dead.
        .read_timeout(Duration::from_secs(45))
        .tls(args.hub.trust()?);
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id.as_str());
    }
    for header in &args.header {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header {header:?}: expected NAME: VALUE"))?;
        builder = builder.header(
            name.trim().parse().context("invalid header name")?,
            value.trim().parse().context("invalid header value")?,
        );
    }
    let mut events: std::pin::Pin<Box<dyn futures_util::Stream<Item = _> + Send>> = match &args.post
    {
        Some(body) => Box::pin(builder.post(body.clone()).resumable()),
        None => Box::pin(builder.build()),
    };
    let mut received = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        let item = tokio::select! {
            item = events.next() => item,
            _ = stop_signal() => break,
        };
        let Some(item) = item else { break };
        match item {
            Ok(Event::Message(m)) if m.event_type == ssehub_client::END_EVENT => {
                return answer_end(&m.data);
            }
            Ok(Event::Message(m)) => {
                if m.event_type == ssehub_core::GAP_EVENT {
                    eprintln!(
                        "ssehub sub: warning: history could not fill a gap: {}",
                        m.data
                    );
                    if !args.json {
                        continue;
                    }
                }
                let bytes = match ssehub_client::binary_data(&m) {
                    None => None,
                    Some(Ok(bytes)) => Some(bytes),
                    Some(Err(e)) => {
                        eprintln!(
                            "ssehub sub: warning: binary event {} is not base64 ({e}); skipped",
                            m.last_event_id
                        );
                        continue;
                    }
                };
                let mut saved = None;
                if let (Some(bytes), Some(dir)) = (&bytes, &args.save_dir) {
                    let path = save_path(dir, &m.last_event_id);
                    std::fs::write(&path, bytes)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    saved = Some(path);
                }
                let event_type = ssehub_client::base_type(&m.event_type);
                let written = if let (Some(path), false) = (&saved, args.json) {
                    writeln!(stdout, "{}", path.display())
                } else if let (Some(bytes), false) = (&bytes, args.json) {
                    writeln!(stdout, "[{event_type}] {} bytes", bytes.len())
                } else if args.json {
                    let binary = bytes.is_some();
                    serde_json::to_writer(
                        &mut stdout,
                        &JsonEvent {
                            event_type: if binary { event_type } else { &m.event_type },
                            data: (!binary).then_some(m.data.as_str()),
                            data_base64: binary.then_some(m.data.as_str()),
                            binary,
                            last_event_id: &m.last_event_id,
                        },
                    )
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(stdout))
                } else {
                    match m.event_type.as_str() {
                        "message" | "stdout" => writeln!(stdout, "{}", m.data),
                        "stderr" => {
                            eprintln!("{}", m.data);
                            Ok(())
                        }
                        other => writeln!(stdout, "[{other}] {}", m.data),
                    }
                };
                if written.and_then(|()| stdout.flush()).is_err() {
                    break; // stdout closed (a pipe into `head`): done
                }
                received += 1;
                if args.count.is_some_and(|n| received >= n) {
                    break;
                }
            }
            Ok(Event::Open { .. } | Event::Comment(_)) => {}
            Err(e) if e.is_fatal() => {
                anyhow::bail!("the subscription failed: {e}");
            }
            Err(Error::Parse(e)) => eprintln!("ssehub sub: warning: {e}"),
            Err(e) => eprintln!("ssehub sub: {e}; reconnecting"),
        }
    }
    drop(events);
    Ok(())
}

/// The end of a relayed answer: fine when the upstream ended it (`{"reason": "done"}`).
fn answer_end(data: &str) -> anyhow::Result<()> {
    let end: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    match end["reason"].as_str() {
        Some("done") => Ok(()),
        reason => anyhow::bail!(
            "the answer ended early ({}): {}",
            reason.unwrap_or("unknown"),
            end["message"].as_str().unwrap_or("")
        ),
    }
}

/// Ctrl-C (SIGINT) or SIGTERM: either ends `sub` cleanly, with exit code 0.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url("http://h/", &["a/b".into()]), "http://h/topics/a/b");
        assert_eq!(
            url("http://h", &["a b/ü".into()]),
            "http://h/topics/a%20b/%C3%BC"
        );
        assert_eq!(
            url("http://h", &["a/*".into(), "b&c".into()]),
            "http://h/subscribe?topic=a%2F*&topic=b%26c"
        );
    }
}
