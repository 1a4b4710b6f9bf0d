//! Criterion's saved estimates as the Markdown tables of `BENCHMARKS.md`.
//!
//! Criterion keeps each benchmark's result in `target/criterion/<group>/<function>/new/`, and
//! under `<baseline>/` too when run with `--save-baseline <baseline>` (`benchmark.json` names
//! it and gives its throughput in bytes, `estimates.json` its time per iteration). Given
//! several baselines, each benchmark's fastest run is kept: on a shared machine, other work
//! only ever slows a run down. The benchmark ids written by `benches/codec.rs` are
//! `parse/<workload>/<chunking>` × parser and `encode/<workload>` × encoder, so the number of
//! events per iteration comes from the workload's name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::workload;

/// Function id of our per-event encoder in the encode groups.
pub const OURS_ENCODE: &str = "ssehub-wire encode";
/// Function id of our one-buffer encoder in the encode groups.
pub const OURS_ENCODE_INTO: &str = "ssehub-wire encode_into";
/// Function id of sse-stream's encoder.
pub const SSE_STREAM_ENCODE: &str = "sse-stream Sse::encode";
/// Function id of sse-codec's encoder.
pub const SSE_CODEC_ENCODE: &str = "sse-codec Encoder";
/// Function id of async-sse's encoder.
pub const ASYNC_SSE_ENCODE: &str = "async-sse Sender";

/// Chunking label for 16 KiB chunks.
pub const CHUNKED: &str = "16KiB-chunks";
/// Chunking label for the whole stream in one chunk.
pub const WHOLE: &str = "one-chunk";

/// Which of our encoders a peer's encoder is compared with: per-event [`bytes::Bytes`] against
/// [`OURS_ENCODE`], one growing buffer against [`OURS_ENCODE_INTO`].
fn encode_reference(function: &str) -> &'static str {
    match function {
        SSE_STREAM_ENCODE | OURS_ENCODE => OURS_ENCODE,
        _ => OURS_ENCODE_INTO,
    }
}

/// One measured benchmark.
#[derive(Debug, Clone)]
struct Row {
    group: String,
    function: String,
    bytes: u64,
    /// Events per iteration, when the benchmark recorded them.
    events: Option<u64>,
    nanos: f64,
}

impl Row {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (self.nanos / 1e9) / (1024.0 * 1024.0)
    }
}

/// The default criterion output directory: `$CARGO_TARGET_DIR/criterion`, else the workspace's
/// `target/criterion`.
pub fn default_criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("criterion")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad {}: {e}", path.display()))
}

fn collect(dir: &Path, baselines: &[String], rows: &mut Vec<Row>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.join("new/benchmark.json").is_file() {
            let mut best: Option<Row> = None;
            for baseline in baselines {
                let bench = path.join(baseline).join("benchmark.json");
                if !bench.is_file() {
                    continue;
                }
                let meta = read_json(&bench)?;
                let est = read_json(&path.join(baseline).join("estimates.json"))?;
                let point = |key: &str| est.get(key)?.get("point_estimate")?.as_f64();
                let Some(nanos) = point("slope").or_else(|| point("mean")) else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| nanos < b.nanos) {
                    best = Some(Row {
                        group: meta["group_id"].as_str().unwrap_or_default().to_string(),
                        function: meta["function_id"].as_str().unwrap_or_default().to_string(),
                        bytes: meta["throughput"]["Bytes"]
                            .as_u64()
                            .or_else(|| meta["throughput"]["ElementsAndBytes"]["bytes"].as_u64())
                            .unwrap_or(0),
                        events: meta["throughput"]["ElementsAndBytes"]["elements"].as_u64(),
                        nanos,
                    });
                }
            }
            rows.extend(best);
        } else if path.file_name().is_some_and(|n| n != "report") {
            collect(&path, baselines, rows)?;
        }
    }
    Ok(())
}

fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_events(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// How much faster ssehub-wire is (above 1) or slower (below 1); bold where the peer is
/// clearly faster (by more than the 5 % runs differ by).
fn ratio(x: f64, suffix: &str) -> String {
    if x < 0.95 {
        format!("**{x:.2}×**{suffix}")
    } else {
        format!("{x:.2}×{suffix}")
    }
}

/// Renders the parse table and the encode table from the results under `dir`, keeping each
/// benchmark's fastest run among `baselines` (criterion's latest run is `new`).
///
/// # Errors
///
/// When the directory or one of criterion's files cannot be read.
pub fn render(dir: &Path, baselines: &[String]) -> Result<String, String> {
    let mut rows = Vec::new();
    collect(dir, baselines, &mut rows)?;
    let events: BTreeMap<&str, usize> = workload::all()
        .iter()
        .map(|w| (w.name, w.event_count()))
        .collect();
    let order = |name: &str| {
        workload::all()
            .iter()
            .position(|w| w.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut out = String::new();

    // Parse: group `parse/<workload>/<chunking>`, function = crate.
    let mut parse: Vec<(&str, &str, &Row)> = rows
        .iter()
        .filter_map(|r| {
            let mut parts = r.group.split('/');
            (parts.next() == Some("parse")).then_some(())?;
            Some((parts.next()?, parts.next()?, r))
        })
        .collect();
    parse.sort_by_key(|(w, c, r)| {
        (
            order(w),
            *c != CHUNKED,
            r.function != "ssehub-wire",
            !r.function.starts_with("ssehub-wire"),
            r.function.clone(),
        )
    });
    out.push_str("| workload | chunks | crate | MiB/s | events/s | ssehub-wire ÷ crate |\n");
    out.push_str("|---|---|---|---:|---:|---:|\n");
    for (w, c, r) in &parse {
        let ours = parse
            .iter()
            .find(|(w2, c2, r2)| w2 == w && c2 == c && r2.function == "ssehub-wire")
            .map(|(_, _, r2)| r2.mib_per_s());
        let n = r
            .events
            .unwrap_or(events.get(w).copied().unwrap_or(0) as u64) as f64;
        let ratio = match ours {
            _ if r.function == "ssehub-wire" => "—".to_string(),
            Some(ours) => ratio(ours / r.mib_per_s(), ""),
            None => "?".to_string(),
        };
        let _ = writeln!(
            out,
            "| {w} | {c} | {} | {} | {} | {ratio} |",
            r.function,
            fmt_rate(r.mib_per_s()),
            fmt_events(n / (r.nanos / 1e9)),
        );
    }

    // Encode: group `encode/<workload>`, function = encoder.
    let mut encode: Vec<(&str, &Row)> = rows
        .iter()
        .filter_map(|r| Some((r.group.strip_prefix("encode/")?, r)))
        .collect();
    encode.sort_by_key(|(w, r)| {
        (
            order(w),
            !r.function.starts_with("ssehub-wire"),
            r.function.clone(),
        )
    });
    out.push_str("\n| workload | encoder | MiB/s | events/s | ssehub-wire ÷ encoder |\n");
    out.push_str("|---|---|---:|---:|---:|\n");
    for (w, r) in &encode {
        let reference = encode_reference(&r.function);
        let ours = encode
            .iter()
            .find(|(w2, r2)| w2 == w && r2.function == reference)
            .map(|(_, r2)| r2.mib_per_s());
        let n = r
            .events
            .unwrap_or(events.get(w).copied().unwrap_or(0) as u64) as f64;
        let ratio = match ours {
            _ if r.function.starts_with("ssehub-wire") => "—".to_string(),
            Some(ours) => ratio(
                ours / r.mib_per_s(),
                &format!(" (vs `{}`)", &reference["ssehub-wire ".len()..]),
            ),
            None => "?".to_string(),
        };
        let _ = writeln!(
            out,
            "| {w} | {} | {} | {} | {ratio} |",
            r.function,
            fmt_rate(r.mib_per_s()),
            fmt_events(n / (r.nanos / 1e9)),
        );
    }
    Ok(out)
}
