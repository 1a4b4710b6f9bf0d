//! `ssehub bench publish`: P concurrent publishers, each sending batches of B events and
//! waiting for each answer, flat out or at a total rate; reports acknowledged events per second
//! and the publish latency (request sent → acknowledgement received).
//!
//! With a durable hub every acknowledgement means "fsync'd", so this measures group commit:
//! the more publishers wait at once, the more events share one fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::args::PublishBenchArgs;
use crate::histogram::{Histogram, PercentilesMs};
use crate::micros;
use crate::publishers::{Failures, lock};

#[derive(Serialize)]
struct Report {
    scenario: &'static str,
    hub: String,
    publishers: u32,
    batch: u32,
    payload_bytes: usize,
    /// Events per second asked for in total (0: flat out).
    rate: u32,
    events_acknowledged: u64,
    requests: u64,
    errors: u64,
    secs: f64,
    events_per_sec: f64,
    /// Request sent → answer received, per request (a batch is one request).
    latency_ms: Option<PercentilesMs>,
    first_error: Option<String>,
}

pub(crate) async fn run(args: &PublishBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.publishers > 0 && args.batch > 0,
        "--publishers and --batch must be at least 1"
    );
    let hub = args.hub.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.publishers as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    let total = u64::from(args.events);
    let claimed = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Failures::default()));
    let latency = Arc::new(Histogram::new());
    let run = format!("{:x}", crate::now_micros());
    let data = "x".repeat(args.payload_bytes);
    let deadline = Instant::now() + crate::seconds(args.max_duration, "--max-duration")?;
    // Each publisher sends one batch every `period` when a rate is asked for.
    let period = (args.rate > 0).then(|| {
        Duration::from_secs_f64(
            f64::from(args.batch) * f64::from(args.publishers) / f64::from(args.rate),
        )
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..args.publishers {
        let (client, claimed, acked, requests, failures, latency) = (
            client.clone(),
            claimed.clone(),
            acked.clone(),
            requests.clone(),
            failures.clone(),
            latency.clone(),
        );
        let batch: Vec<serde_json::Value> = (0..args.batch)
            .map(|_| serde_json::json!({"topic": format!("bench/publish/{run}/{p}"), "data": data}))
            .collect();
        let body = serde_json::to_vec(&batch)?;
        let url = format!("{hub}/publish");
        let size = u64::from(args.batch);
        tasks.push(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now();
            loop {
                if claimed.fetch_add(size, Ordering::Relaxed) >= total || Instant::now() > deadline
                {
                    return;
                }
                if let Some(period) = period {
                    tokio::time::sleep_until(next).await;
                    next += period;
                }
                let sent = Instant::now();
                let result = client.post(&url).body(body.clone()).send().await;
                requests.fetch_add(1, Ordering::Relaxed);
                let outcome = match result {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(drop).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        latency.record(micros(sent.elapsed()));
                        acked.fetch_add(size, Ordering::Relaxed);
                    }
                    Err(message) => lock(&failures).add(message),
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let events = acked.load(Ordering::Relaxed);
    let failures = std::mem::take(&mut *lock(&failures));
    let report = Report {
        scenario: "publish",
        hub,
        publishers: args.publishers,
        batch: args.batch,
        payload_bytes: args.payload_bytes,
        rate: args.rate,
        events_acknowledged: events,
        requests: requests.load(Ordering::Relaxed),
        errors: failures.count,
        secs,
        events_per_sec: events as f64 / secs,
        latency_ms: PercentilesMs::of(&latency),
        first_error: failures.first,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "publish: {} publishers × batches of {} ({} B events), rate {}",
            report.publishers,
            report.batch,
            report.payload_bytes,
            if report.rate == 0 {
                "flat out".to_string()
            } else {
                format!("{}/s", report.rate)
            }
        );
        println!(
            "  acknowledged  {} events in {:.2} s = {:.0} events/s ({} requests, {} errors)",
            report.events_acknowledged,
            report.secs,
            report.events_per_sec,
            report.requests,
            report.errors
        );
        if let Some(l) = &report.latency_ms {
            println!(
                "  ack latency   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50, l.p90, l.p99, l.max
            );
        }
        if let Some(e) = &report.first_error {
            println!("  first error   {e}");
        }
    }
    Ok(())
}
