//! Fills a data dir with N events, to measure startup time and disk use at scale.
//!
//! Run with: `cargo run --release -p ssehub-store --example fill -- DIR N [TOPICS]`
//! (100-byte events, batches of 10,000, spread over TOPICS topics, 100 by default), then time
//! `ssehub serve --data-dir DIR` until it prints its listening line.

use std::time::Instant;

use ssehub_core::{NewEvent, Store, Topic};
use ssehub_store::{DiskOptions, DiskStore, Retention, RetentionLimits};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: fill DIR N [TOPICS]")?;
    let total: u64 = args.next().ok_or("usage: fill DIR N [TOPICS]")?.parse()?;
    let topics: u64 = args.next().map_or(Ok(100), |t| t.parse())?;
    let options = DiskOptions {
        retention: Retention {
            hub: RetentionLimits::default(),
            ..Retention::default()
        },
        quick_repair: std::env::var("QUICK_REPAIR").map_or(true, |v| v != "0"),
        ..DiskOptions::default()
    };
    let store = DiskStore::open(dir.as_ref(), options)?;
    let started = Instant::now();
    let data = "x".repeat(100);
    let mut done = 0;
    while done < total {
        let n = (total - done).min(10_000);
        let batch = (done..done + n)
            .map(|i| {
                NewEvent::new(
                    Topic::new(&format!("fill/{}", i % topics)).unwrap(),
                    data.as_str(),
                )
            })
            .collect();
        store.append(batch).await?;
        done += n;
        if done % 1_000_000 == 0 {
            eprintln!("{done} events, {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    println!(
        "filled {dir} with {total} events in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
