//! `ssehub bench snapshot`: a topic with K keys (each published V times), then one late
//! joiner asking for the snapshot: the time to its first event and to the end of the
//! snapshot (its K-th event), and the rate in between.
//!
//! The fill publishes batches (`POST /publish`, `"key"` on every item, 1,000 per batch) on
//! a fresh topic `bench/snapshot/<run id>`, each key's versions in turn, so that the newest
//! version of every key is spread over the whole log as in a real keyed topic. The snapshot
//! is read with one `GET /topics/{topic}?snapshot=true`, parsed with `ssehub-wire`; every
//! event's data names its key and version, and the run checks each key arrives once, with
//! its last version.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde::Serialize;
use ssehub_wire::{Frame, Parser};

use crate::args::SnapshotArgs;

/// Events per fill request.
const FILL_BATCH: u32 = 1_000;

#[derive(Serialize)]
struct Report {
    scenario: &'static str,
    hub: String,
    keys: u32,
    versions: u32,
    payload_bytes: usize,
    /// Events published to fill the topic, and how long it took.
    events_published: u64,
    fill_secs: f64,
    /// Request sent → response headers.
    headers_ms: f64,
    /// Request sent → the snapshot's first event parsed.
    first_event_ms: f64,
    /// Request sent → the snapshot's last (K-th) event parsed.
    snapshot_ms: f64,
    /// Snapshot events per second, first to last.
    events_per_sec: f64,
    /// Body bytes read up to the end of the snapshot.
    bytes: u64,
    /// Keys that came with an older version than their last, or twice (must be 0).
    wrong: u64,
}

pub(crate) async fn run(args: &SnapshotArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.keys > 0 && args.versions > 0,
        "--keys and --versions must be at least 1"
    );
    let hub = args.hub.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let deadline = Instant::now() + crate::seconds(args.max_duration, "--max-duration")?;
    let topic = format!("bench/snapshot/{:x}", crate::now_micros());
    let pad = "x".repeat(args.payload_bytes.saturating_sub(24));

    // Fill: every key's version 0, then every key's version 1, ...
    let filled = Instant::now();
    let total = u64::from(args.keys) * u64::from(args.versions);
    let mut sent = 0u64;
    while sent < total {
        anyhow::ensure!(Instant::now() < deadline, "the fill passed --max-duration");
        let batch: Vec<serde_json::Value> = (sent..total.min(sent + u64::from(FILL_BATCH)))
            .map(|i| {
                let (version, key) = (i / u64::from(args.keys), i % u64::from(args.keys));
                serde_json::json!({
                    "topic": topic,
                    "key": format!("k{key}"),
                    "data": format!("{key} {version} {pad}"),
                })
            })
            .collect();
        let count = batch.len() as u64;
        let response = client
            .post(format!("{hub}/publish"))
            .json(&batch)
            .send()
            .await
            .context("the fill's publish failed")?;
        anyhow::ensure!(
            response.status().is_success(),
            "the hub refused the fill: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        sent += count;
    }
    let fill_secs = filled.elapsed().as_secs_f64();

    // The late joiner.
    let url = format!("{hub}/topics/{topic}?snapshot=true");
    let started = Instant::now();
    let response = client
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .context("the snapshot request failed")?;
    anyhow::ensure!(
        response.status().is_success(),
        "the hub refused the snapshot: {}",
        response.status()
    );
    let headers = started.elapsed();
    let mut body = response.bytes_stream();
    let mut parser = Parser::new();
    let mut seen = vec![false; args.keys as usize];
    let (mut received, mut wrong, mut bytes) = (0u32, 0u64, 0u64);
    let mut first = None;
    let last_version = u64::from(args.versions - 1);
    while received < args.keys {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .context("the snapshot did not end within --max-duration")?
            .context("the hub ended the stream before the snapshot's end")?
            .context("the stream broke")?;
        bytes += chunk.len() as u64;
        for frame in parser.feed_iter(&chunk) {
            let Ok(Frame::Event(event)) = frame else {
                continue;
            };
            first.get_or_insert_with(|| started.elapsed());
            received += 1;
            let mut parts = event.data.split(' ');
            let key: Option<usize> = parts.next().and_then(|k| k.parse().ok());
            let version: Option<u64> = parts.next().and_then(|v| v.parse().ok());
            match (key.and_then(|k| seen.get_mut(k)), version) {
                (Some(seen), Some(v)) if !*seen && v == last_version => *seen = true,
                _ => wrong += 1,
            }
        }
    }
    let snapshot = started.elapsed();
    let first = first.unwrap_or(snapshot);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report = Report {
        scenario: "snapshot",
        hub,
        keys: args.keys,
        versions: args.versions,
        payload_bytes: args.payload_bytes,
        events_published: total,
        fill_secs,
        headers_ms: ms(headers),
        first_event_ms: ms(first),
        snapshot_ms: ms(snapshot),
        events_per_sec: f64::from(args.keys) / (snapshot - first).as_secs_f64().max(1e-6),
        bytes,
        wrong,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "snapshot: {} keys × {} versions ({} B events), filled in {:.1} s",
            report.keys, report.versions, report.payload_bytes, report.fill_secs
        );
        println!(
            "  late joiner   headers {:.1} ms  first event {:.1} ms  end of snapshot {:.1} ms",
            report.headers_ms, report.first_event_ms, report.snapshot_ms
        );
        println!(
            "  snapshot      {} events, {} bytes, {:.0} events/s, {} wrong",
            report.keys, report.bytes, report.events_per_sec, report.wrong
        );
    }
    anyhow::ensure!(wrong == 0, "{wrong} keys came twice or with an old version");
    Ok(())
}
