//! Measures redb 4 against fjall 3 on ssehub-store's workload: an append-only event log keyed by
//! a `u64` sequence number with ~100-byte values, appended in group-committed batches (one
//! fsync'd commit per batch), read as "events after seq X, up to N", trimmed from the front for
//! retention, and reopened at start-up with millions of events stored.
//!
//! These are I/O- and fsync-bound measurements, so this is a plain binary timed with
//! [`Instant`], reporting medians and percentiles over repeated runs, not a criterion bench.
//!
//! ```text
//! cargo run --release -p ssehub-store-engines              # the full run (2-4 min + build)
//! cargo run --release -p ssehub-store-engines -- --smoke   # tiny sizes, checks the harness
//!     --skip-appends / --skip-big                          # run only part of it
//! ssehub-store-engines --open-only <redb|fjall> <dir> [flush]   # time one open (diagnostics)
//! ssehub-store-engines --crash-writer <redb|fjall> <dir> <0|1>  # internal: the SIGKILL child
//! ```
//!
//! Everything is written under `target/tmp-engines` of the workspace (or `$ENGINES_DIR`),
//! removed at the end.
//! Results go to stdout as Markdown tables; progress goes to stderr. The figures and what they
//! mean are in `docs/storage-engines.md`.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::num::NonZeroU64;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fjall::{KeyspaceCreateOptions, PersistMode};
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
const RECORD_LEN: usize = 100;
/// The same cache budget for both engines (redb defaults to 1 GiB, fjall to 32 MiB).
const CACHE_BYTES: usize = 256 * 1024 * 1024;
const REDB_FILE: &str = "events.redb";
const FJALL_DIR: &str = "fjall";
const FJALL_KEYSPACE: &str = "events";

// ---------------------------------------------------------------------------------------------
// Workload data

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A 100-byte event record shaped like ssehub's: a binary header (seq, timestamp) and a small
/// JSON-ish payload of which 32 bytes are random hex, so it is compressible about as much as
/// real events are (neither all-zero nor incompressible).
fn record(seq: u64, rng: &mut Rng, out: &mut [u8; RECORD_LEN]) {
    const BODY: &[u8; 84] =
        b"{\"event\":\"order.updated\",\"id\":\"################################\",\"v\":1}             ";
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&(1_700_000_000_000 + seq).to_le_bytes());
    out[16..].copy_from_slice(BODY);
    let (a, b) = (rng.next_u64(), rng.next_u64());
    for i in 0..16 {
        out[16 + 31 + i] = HEX[((a >> (i * 4)) & 15) as usize];
        out[16 + 47 + i] = HEX[((b >> (i * 4)) & 15) as usize];
    }
    debug_assert!(!out[16..].contains(&b'#'));
}

// ---------------------------------------------------------------------------------------------
// The two engines behind one small interface

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Redb,
    Fjall,
    /// A plain append-only file: the fsync floor, for the append measurements only.
    RawFile,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Redb => "redb",
            Engine::Fjall => "fjall",
            Engine::RawFile => "file",
        }
    }

    fn parse(s: &str) -> Res<Self> {
        match s {
            "redb" => Ok(Engine::Redb),
            "fjall" => Ok(Engine::Fjall),
            _ => Err(format!("unknown engine {s}").into()),
        }
    }
}

/// How a commit is made durable (or not).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// redb `Durability::Immediate` (1-phase commit, fdatasync); fjall `PersistMode::SyncAll`.
    Durable,
    /// redb `Durability::Immediate` + `set_quick_repair(true)` (2-phase commit, allocator state
    /// saved with each commit); fjall: unused.
    DurableQuickRepair,
    /// fjall `PersistMode::SyncData` (fdatasync, as redb uses); redb: unused.
    DurableSyncData,
    /// redb `Durability::None`; fjall `PersistMode::Buffer` (write(2) to the OS, no fsync).
    Off,
}

/// How redb inserts a batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RedbInsert {
    /// `Table::insert` per event.
    Insert,
    /// `Table::upper_bound_mut(Unbounded)` then `CursorMut::insert_before` per event (redb 4.x's
    /// ordered-append cursor).
    Cursor,
}

struct Variant {
    label: &'static str,
    engine: Engine,
    sync: Mode,
    insert: RedbInsert,
}

enum Store {
    Redb(redb::Database, Arc<AtomicU64>),
    Fjall(fjall::Database, fjall::Keyspace),
    RawFile(fs::File),
}

fn redb_builder(repair_calls: &Arc<AtomicU64>) -> redb::Builder {
    let mut b = redb::Database::builder();
    b.set_cache_size(CACHE_BYTES);
    let calls = Arc::clone(repair_calls);
    b.set_repair_callback(move |_session| {
        calls.fetch_add(1, Ordering::Relaxed);
    });
    b
}

impl Store {
    fn create(engine: Engine, dir: &Path) -> Res<Self> {
        fs::create_dir_all(dir)?;
        match engine {
            Engine::Redb => {
                let calls = Arc::new(AtomicU64::new(0));
                let db = redb_builder(&calls).create(dir.join(REDB_FILE))?;
                Ok(Store::Redb(db, calls))
            }
            Engine::Fjall => Self::open(engine, dir),
            Engine::RawFile => Ok(Store::RawFile(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("log.bin"))?,
            )),
        }
    }

    fn open(engine: Engine, dir: &Path) -> Res<Self> {
        match engine {
            Engine::Redb => {
                let calls = Arc::new(AtomicU64::new(0));
                let db = redb_builder(&calls).open(dir.join(REDB_FILE))?;
                Ok(Store::Redb(db, calls))
            }
            Engine::Fjall => {
                let db = fjall::Database::builder(dir.join(FJALL_DIR))
                    .cache_size(CACHE_BYTES as u64)
                    .open()?;
                let ks = db.keyspace(FJALL_KEYSPACE, KeyspaceCreateOptions::default)?;
                Ok(Store::Fjall(db, ks))
            }
            Engine::RawFile => Err("the raw file is only for appends".into()),
        }
    }

    /// How many times redb's repair callback ran while this store was opened.
    fn repair_calls(&self) -> u64 {
        match self {
            Store::Redb(_, calls) => calls.load(Ordering::Relaxed),
            Store::Fjall(..) | Store::RawFile(_) => 0,
        }
    }

    /// Appends events `first..first + n` in one commit.
    fn append(&self, first: u64, n: u64, v: &Variant, rng: &mut Rng) -> Res<()> {
        let mut rec = [0u8; RECORD_LEN];
        match self {
            Store::Redb(db, _) => {
                let mut txn = db.begin_write()?;
                match v.sync {
                    Mode::Durable | Mode::DurableSyncData => {
                        txn.set_durability(Durability::Immediate)?;
                    }
                    Mode::DurableQuickRepair => {
                        txn.set_durability(Durability::Immediate)?;
                        txn.set_quick_repair(true);
                    }
                    Mode::Off => txn.set_durability(Durability::None)?,
                }
                {
                    let mut table = txn.open_table(EVENTS)?;
                    match v.insert {
                        RedbInsert::Insert => {
                            for seq in first..first + n {
                                record(seq, rng, &mut rec);
                                table.insert(seq, &rec[..])?;
                            }
                        }
                        RedbInsert::Cursor => {
                            let mut cursor = table.upper_bound_mut(Bound::<u64>::Unbounded)?;
                            for seq in first..first + n {
                                record(seq, rng, &mut rec);
                                cursor.insert_before(seq, &rec[..])?;
                            }
                            cursor.close()?;
                        }
                    }
                }
                txn.commit()?;
            }
            Store::Fjall(db, ks) => {
                let mode = match v.sync {
                    Mode::Durable | Mode::DurableQuickRepair => PersistMode::SyncAll,
                    Mode::DurableSyncData => PersistMode::SyncData,
                    Mode::Off => PersistMode::Buffer,
                };
                let mut batch = db.batch().durability(Some(mode));
                for seq in first..first + n {
                    record(seq, rng, &mut rec);
                    batch.insert(ks, seq.to_be_bytes().as_slice(), rec.as_slice());
                }
                batch.commit()?;
            }
            Store::RawFile(file) => {
                use std::io::Write as _;
                let mut buf = Vec::with_capacity(n as usize * (8 + RECORD_LEN));
                for seq in first..first + n {
                    record(seq, rng, &mut rec);
                    buf.extend_from_slice(&seq.to_be_bytes());
                    buf.extend_from_slice(&rec);
                }
                let mut f: &fs::File = file;
                f.write_all(&buf)?;
                file.sync_data()?;
            }
        }
        Ok(())
    }

    /// fjall: seals the memtable and waits until it is flushed to a table file, so that the
    /// journal replayed at the next open is empty. redb: nothing to do.
    fn flush_memtable(&self) -> Res<()> {
        if let Store::Fjall(_, ks) = self {
            ks.rotate_memtable_and_wait()?;
        }
        Ok(())
    }

    /// A durable, empty-ish commit: after `Mode::Off` commits, makes them durable.
    fn make_durable(&self) -> Res<()> {
        match self {
            Store::Redb(db, _) => {
                let mut txn = db.begin_write()?;
                txn.set_durability(Durability::Immediate)?;
                txn.open_table(EVENTS)?;
                txn.commit()?;
            }
            Store::Fjall(db, _) => db.persist(PersistMode::SyncAll)?,
            Store::RawFile(file) => file.sync_data()?,
        }
        Ok(())
    }

    /// Reads up to `n` events with seq >= `start`; returns (count, value bytes), checking order.
    fn read_range(&self, start: u64, n: usize) -> Res<(usize, usize)> {
        let (mut count, mut bytes) = (0usize, 0usize);
        let mut expect = start;
        match self {
            Store::Redb(db, _) => {
                let rtxn = db.begin_read()?;
                let table = rtxn.open_table(EVENTS)?;
                for item in table.range(start..)?.take(n) {
                    let (k, v) = item?;
                    if k.value() < expect {
                        return Err("redb range out of order".into());
                    }
                    expect = k.value() + 1;
                    bytes += v.value().len();
                    count += 1;
                }
            }
            Store::Fjall(_, ks) => {
                for guard in ks.range(start.to_be_bytes()..).take(n) {
                    let (k, v) = guard.into_inner()?;
                    let k = u64::from_be_bytes(k.as_ref().try_into()?);
                    if k < expect {
                        return Err("fjall range out of order".into());
                    }
                    expect = k + 1;
                    bytes += v.len();
                    count += 1;
                }
            }
            Store::RawFile(_) => return Err("not supported by the raw file".into()),
        }
        Ok((count, bytes))
    }

    fn first_seq(&self) -> Res<Option<u64>> {
        match self {
            Store::Redb(db, _) => {
                let rtxn = db.begin_read()?;
                let table = rtxn.open_table(EVENTS)?;
                Ok(table.first()?.map(|(k, _)| k.value()))
            }
            Store::Fjall(_, ks) => match ks.first_key_value() {
                Some(g) => Ok(Some(u64::from_be_bytes(g.key()?.as_ref().try_into()?))),
                None => Ok(None),
            },
            Store::RawFile(_) => Err("not supported by the raw file".into()),
        }
    }

    fn last_seq(&self) -> Res<Option<u64>> {
        match self {
            Store::Redb(db, _) => {
                let rtxn = db.begin_read()?;
                let table = rtxn.open_table(EVENTS)?;
                Ok(table.last()?.map(|(k, _)| k.value()))
            }
            Store::Fjall(_, ks) => match ks.last_key_value() {
                Some(g) => Ok(Some(u64::from_be_bytes(g.key()?.as_ref().try_into()?))),
                None => Ok(None),
            },
            Store::RawFile(_) => Err("not supported by the raw file".into()),
        }
    }

    /// Deletes every event with seq < `end` (starting at `first`) in one durable commit.
    fn delete_front(&self, first: u64, end: u64) -> Res<()> {
        match self {
            Store::Redb(db, _) => {
                let mut txn = db.begin_write()?;
                txn.set_durability(Durability::Immediate)?;
                {
                    let mut table = txn.open_table(EVENTS)?;
                    table.retain_in(..end, |_, _| false)?;
                }
                txn.commit()?;
            }
            Store::Fjall(db, ks) => {
                let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
                for seq in first..end {
                    batch.remove(ks, seq.to_be_bytes().as_slice());
                }
                batch.commit()?;
            }
            Store::RawFile(_) => return Err("not supported by the raw file".into()),
        }
        Ok(())
    }

    /// A clean close: redb's `Database::close`, fjall's drop (which persists the journal and
    /// joins its background threads).
    fn close(self) -> Res<()> {
        match self {
            Store::Redb(db, _) => db.close()?,
            Store::Fjall(db, ks) => {
                drop(ks);
                drop(db);
            }
            Store::RawFile(file) => file.sync_all()?,
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn engine_dir(root: &Path, engine: Engine, tag: &str) -> PathBuf {
    root.join(format!("{}-{tag}", engine.name()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            files_under(&entry.path(), out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// (apparent bytes, allocated bytes, file count) under `dir`.
fn disk_usage(dir: &Path) -> Res<(u64, u64, usize)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut files = Vec::new();
    files_under(dir, &mut files)?;
    let (mut apparent, mut allocated) = (0, 0);
    for f in &files {
        let m = fs::metadata(f)?;
        apparent += m.len();
        allocated += m.blocks() * 512;
    }
    Ok((apparent, allocated, files.len()))
}

/// Drops this database's files (only them) from the page cache, so the next open reads from
/// the device: `posix_fadvise(POSIX_FADV_DONTNEED)` on every file. (The VM's host may still
/// cache them; "cold" means cold in this guest.)
fn drop_cache(dir: &Path) -> Res<()> {
    let mut files = Vec::new();
    files_under(dir, &mut files)?;
    for f in files {
        let file = fs::File::open(&f)?;
        rustix::fs::fadvise(&file, 0, None::<NonZeroU64>, rustix::fs::Advice::DontNeed)?;
    }
    Ok(())
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of durations, in milliseconds.
fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} s", x / 1e3)
    } else if x >= 10.0 {
        format!("{x:.0} ms")
    } else if x >= 1.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

fn fmt_mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// "a/b" with two significant-ish digits.
fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 || !a.is_finite() || !b.is_finite() {
        "-".into()
    } else {
        let r = a / b;
        if r >= 10.0 {
            format!("{r:.0}×")
        } else {
            format!("{r:.2}×")
        }
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!(
        "[{:>7.1}s] {}",
        started().elapsed().as_secs_f64(),
        msg.as_ref()
    );
}

fn started() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

// ---------------------------------------------------------------------------------------------
// Sizes

struct Sizes {
    /// (batch size, commits per run) for the durable append runs.
    durable: Vec<(u64, u64)>,
    /// Commits of 1024 per run for the non-durable run.
    nondurable_commits: u64,
    runs: usize,
    base_events: u64,
    big_events: u64,
    big_fallback: u64,
    big_deadline: Duration,
    reads_per_run: usize,
    read_len: usize,
    retention_total: u64,
    retention_batch: u64,
    open_reps: usize,
    crash_reps_base: usize,
    crash_reps_big: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            durable: vec![(1, 300), (64, 300), (1024, 100), (8192, 30)],
            nondurable_commits: 300,
            runs: 3,
            base_events: 1_000_000,
            big_events: 10_000_000,
            big_fallback: 3_000_000,
            big_deadline: Duration::from_secs(180),
            reads_per_run: 2000,
            read_len: 1000,
            retention_total: 100_000,
            retention_batch: 10_000,
            open_reps: 5,
            crash_reps_base: 3,
            crash_reps_big: 2,
        }
    }

    fn smoke() -> Self {
        Self {
            durable: vec![(1, 20), (64, 20), (1024, 10), (8192, 3)],
            nondurable_commits: 20,
            runs: 2,
            base_events: 50_000,
            big_events: 200_000,
            big_fallback: 100_000,
            big_deadline: Duration::from_secs(30),
            reads_per_run: 100,
            read_len: 1000,
            retention_total: 20_000,
            retention_batch: 10_000,
            open_reps: 2,
            crash_reps_base: 1,
            crash_reps_big: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1 + 2: append throughput

/// Per-variant results of the append runs.
#[derive(Default)]
struct AppendResult {
    /// events / (sum of this run's commit times), one per run.
    rates: Vec<f64>,
    /// Every timed commit of every run.
    latencies: Vec<Duration>,
    /// The closing durable commit after a non-durable run, one per run (ms).
    closing_ms: Vec<f64>,
}

/// Runs `runs` rounds; each round creates a fresh database per variant, then makes `commits`
/// commits of `batch` events **round-robin across the variants** (rotating who goes first), so
/// that every variant sees the same disk and the same neighbours' load at the same moment: on a
/// shared VM whose fsync latency drifts from second to second this matters more than anything.
fn append_rounds(
    root: &Path,
    variants: &[Variant],
    batch: u64,
    commits: u64,
    runs: usize,
    seed: u64,
) -> Res<Vec<AppendResult>> {
    let mut results: Vec<AppendResult> = variants.iter().map(|_| AppendResult::default()).collect();
    for run in 0..runs {
        let mut stores = Vec::new();
        let mut rngs = Vec::new();
        for (i, v) in variants.iter().enumerate() {
            let dir = root.join(format!("append-{i}"));
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            let store = Store::create(v.engine, &dir)?;
            let mut rng = Rng::new(seed + run as u64);
            // One untimed warm-up commit (creates the table / keyspace / files).
            store.append(0, batch, v, &mut rng)?;
            stores.push((store, dir));
            rngs.push(rng);
        }
        let mut sums = vec![Duration::ZERO; variants.len()];
        for c in 0..commits {
            let first = batch * (c + 1);
            for i in 0..variants.len() {
                let idx = (i + c as usize + run) % variants.len();
                let t = Instant::now();
                stores[idx]
                    .0
                    .append(first, batch, &variants[idx], &mut rngs[idx])?;
                let d = t.elapsed();
                sums[idx] += d;
                results[idx].latencies.push(d);
            }
        }
        for (idx, (store, dir)) in stores.into_iter().enumerate() {
            if variants[idx].sync == Mode::Off {
                let t = Instant::now();
                store.make_durable()?;
                results[idx].closing_ms.push(ms(t.elapsed()));
            }
            store.close()?;
            fs::remove_dir_all(&dir)?;
            let rate = (batch * commits) as f64 / sums[idx].as_secs_f64();
            results[idx].rates.push(rate);
            log(format!(
                "append batch={batch} {} run {run}: {} ev/s",
                variants[idx].label,
                fmt_rate(rate)
            ));
        }
    }
    for r in &mut results {
        r.latencies.sort();
    }
    Ok(results)
}

fn variant(label: &'static str, engine: Engine, sync: Mode, insert: RedbInsert) -> Variant {
    Variant {
        label,
        engine,
        sync,
        insert,
    }
}

fn bench_appends(root: &Path, sizes: &Sizes, out: &mut String) -> Res<()> {
    use RedbInsert::{Cursor, Insert};
    let variants = [
        variant(
            "redb Immediate (insert)",
            Engine::Redb,
            Mode::Durable,
            Insert,
        ),
        variant(
            "redb Immediate (cursor append)",
            Engine::Redb,
            Mode::Durable,
            Cursor,
        ),
        variant(
            "redb Immediate + quick_repair",
            Engine::Redb,
            Mode::DurableQuickRepair,
            Insert,
        ),
        variant("fjall SyncAll", Engine::Fjall, Mode::Durable, Insert),
        variant(
            "fjall SyncData",
            Engine::Fjall,
            Mode::DurableSyncData,
            Insert,
        ),
        variant(
            "floor: plain file write + fdatasync",
            Engine::RawFile,
            Mode::DurableSyncData,
            Insert,
        ),
    ];
    writeln!(
        out,
        "## 1. Durable appends ({} runs, fresh databases each run)\n",
        sizes.runs
    )?;
    writeln!(
        out,
        "Each commit is one batch of 100-byte events, durable when `commit` returns. All variants run \
         at once, one commit each in turn (round-robin), so they share the disk's moment-to-moment \
         fsync latency. events/s = events / time spent in commits, median over runs; latency \
         percentiles pool every commit of every run. The \"floor\" row appends the same bytes to a \
         plain file with one `fdatasync` per batch: no engine can beat it.\n"
    )?;
    writeln!(
        out,
        "| batch | engine / mode | events/s | commits/s | commit p50 | commit p99 | vs redb Immediate (insert) |"
    )?;
    writeln!(out, "|---:|---|---:|---:|---:|---:|---:|")?;
    for &(batch, commits) in &sizes.durable {
        let mut results = append_rounds(root, &variants, batch, commits, sizes.runs, batch)?;
        let base = median(&mut results[0].rates.clone());
        for (v, r) in variants.iter().zip(results.iter_mut()) {
            let rate = median(&mut r.rates);
            writeln!(
                out,
                "| {batch} | {} | {} | {:.0} | {} | {} | {} |",
                v.label,
                fmt_rate(rate),
                rate / batch as f64,
                fmt_ms(pct_ms(&r.latencies, 50.0)),
                fmt_ms(pct_ms(&r.latencies, 99.0)),
                ratio(rate, base),
            )?;
        }
    }
    writeln!(out)?;

    // 2: durability off.
    let variants = [
        variant(
            "redb Durability::None (insert)",
            Engine::Redb,
            Mode::Off,
            Insert,
        ),
        variant(
            "redb Durability::None (cursor append)",
            Engine::Redb,
            Mode::Off,
            Cursor,
        ),
        variant(
            "fjall PersistMode::Buffer (no fsync)",
            Engine::Fjall,
            Mode::Off,
            Insert,
        ),
    ];
    let commits = sizes.nondurable_commits;
    writeln!(
        out,
        "## 2. Non-durable appends, batches of 1024 ({commits} commits per run, {} runs, round-robin)\n",
        sizes.runs
    )?;
    writeln!(
        out,
        "The closing durable commit that makes the run's data durable (redb: one `Immediate` commit; \
         fjall: `persist(SyncAll)`) is not in events/s; it is shown on its own.\n"
    )?;
    writeln!(
        out,
        "| engine / mode | events/s | commit p50 | commit p99 | closing durable commit (median) | vs redb None (insert) |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    let mut results = append_rounds(root, &variants, 1024, commits, sizes.runs, 100)?;
    let base = median(&mut results[0].rates.clone());
    for (v, r) in variants.iter().zip(results.iter_mut()) {
        let rate = median(&mut r.rates);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            v.label,
            fmt_rate(rate),
            fmt_ms(pct_ms(&r.latencies, 50.0)),
            fmt_ms(pct_ms(&r.latencies, 99.0)),
            fmt_ms(median(&mut r.closing_ms)),
            ratio(rate, base)
        )?;
    }
    writeln!(out)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3-6: the large databases

/// Appends durable batches of `batch` until `target` events exist (keys `0..target`); returns
/// the elapsed time, or stops early at `deadline` and returns the count reached.
fn fill(
    store: &Store,
    engine: Engine,
    from: u64,
    target: u64,
    batch: u64,
    deadline: Option<Duration>,
) -> Res<(u64, Duration)> {
    let v = Variant {
        label: "fill",
        engine,
        sync: Mode::Durable,
        insert: RedbInsert::Insert,
    };
    let mut rng = Rng::new(from ^ 0xF111);
    let t0 = Instant::now();
    let mut next = from;
    while next < target {
        let n = batch.min(target - next);
        store.append(next, n, &v, &mut rng)?;
        next += n;
        if next % 1_000_000 < batch {
            log(format!(
                "{} fill: {next} events, {:.1}s",
                engine.name(),
                t0.elapsed().as_secs_f64()
            ));
        }
        if deadline.is_some_and(|d| t0.elapsed() > d) {
            break;
        }
    }
    Ok((next, t0.elapsed()))
}

/// Time to open and find the newest seq (what the hub does at start-up).
fn timed_open(engine: Engine, dir: &Path, cold: bool) -> Res<(Duration, Duration, Store)> {
    if cold {
        drop_cache(dir)?;
    }
    let t = Instant::now();
    let store = Store::open(engine, dir)?;
    let open = t.elapsed();
    let last = store.last_seq()?;
    let with_last = t.elapsed();
    if last.is_none() {
        return Err("database is empty after reopen".into());
    }
    Ok((open, with_last, store))
}

#[derive(Default)]
struct OpenStats {
    open_ms: Vec<f64>,
    ready_ms: Vec<f64>,
    repair_calls: u64,
    note: String,
    /// Bytes of fjall journal (`*.jnl`) present at each open, i.e. what recovery replays.
    journal_bytes: Vec<f64>,
}

fn journal_bytes(dir: &Path) -> Res<f64> {
    let mut files = Vec::new();
    files_under(dir, &mut files)?;
    let mut total = 0;
    for f in files {
        if f.extension().is_some_and(|e| e == "jnl") {
            total += fs::metadata(&f)?.len();
        }
    }
    Ok(total as f64)
}

fn clean_opens(engine: Engine, dir: &Path, reps: usize, cold: bool) -> Res<OpenStats> {
    let mut st = OpenStats::default();
    for _ in 0..reps {
        st.journal_bytes.push(journal_bytes(dir)?);
        let (open, ready, store) = timed_open(engine, dir, cold)?;
        st.open_ms.push(ms(open));
        st.ready_ms.push(ms(ready));
        st.repair_calls += store.repair_calls();
        store.close()?;
    }
    Ok(st)
}

/// Spawns this binary as a writer that appends durable 1024-event batches forever, waits until
/// it has committed at least once, lets it run `run_for`, then SIGKILLs it by its PID.
fn crash_writer(engine: Engine, dir: &Path, quick_repair: bool, run_for: Duration) -> Res<u64> {
    let exe = std::env::current_exe()?;
    let mut child: Child = Command::new(exe)
        .arg("--crash-writer")
        .arg(engine.name())
        .arg(dir)
        .arg(if quick_repair { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if !line.starts_with("ready") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("crash writer {pid} did not start: {line:?}").into());
    }
    std::thread::sleep(run_for);
    // `Child::kill` sends SIGKILL to this child's PID on Unix.
    child.kill()?;
    let status = child.wait()?;
    log(format!("crash writer pid {pid} killed ({status})"));
    Ok(u64::from(pid))
}

/// Child mode: open, append durable batches of 1024 forever, print "ready" after the first.
fn run_crash_writer(engine: Engine, dir: &Path, quick_repair: bool) -> Res<()> {
    let store = Store::open(engine, dir)?;
    let mut next = store.last_seq()?.map_or(0, |s| s + 1);
    let v = Variant {
        label: "crash-writer",
        engine,
        sync: if quick_repair {
            Mode::DurableQuickRepair
        } else {
            Mode::Durable
        },
        insert: RedbInsert::Insert,
    };
    let mut rng = Rng::new(next);
    let mut announced = false;
    loop {
        store.append(next, 1024, &v, &mut rng)?;
        next += 1024;
        if !announced {
            println!("ready");
            announced = true;
        }
    }
}

fn crash_opens(
    engine: Engine,
    dir: &Path,
    quick_repair: bool,
    reps: usize,
    cold: bool,
) -> Res<OpenStats> {
    let mut st = OpenStats::default();
    for _ in 0..reps {
        let before = {
            let s = Store::open(engine, dir)?;
            let last = s.last_seq()?.unwrap_or(0);
            s.close()?;
            last
        };
        crash_writer(engine, dir, quick_repair, Duration::from_millis(400))?;
        st.journal_bytes.push(journal_bytes(dir)?);
        let (open, ready, store) = timed_open(engine, dir, cold)?;
        let last = store.last_seq()?.unwrap_or(0);
        // Integrity spot check: the newest events read back whole and in order.
        let (n, bytes) = store.read_range(last.saturating_sub(999), 1000)?;
        if bytes != n * RECORD_LEN {
            return Err("torn record after crash".into());
        }
        st.open_ms.push(ms(open));
        st.ready_ms.push(ms(ready));
        st.repair_calls += store.repair_calls();
        let _ = write!(st.note, "{before}→{last} ");
        store.close()?;
    }
    Ok(st)
}

/// One run of random range reads, alternating between the stores read by read (so both see the
/// same machine load); returns each store's per-read latencies.
fn bench_reads(
    stores: &[Store],
    bounds: &[(u64, u64)],
    sizes: &Sizes,
    run: usize,
) -> Res<Vec<Vec<Duration>>> {
    let mut rng = Rng::new(7 + run as u64);
    let mut lat = vec![Vec::with_capacity(sizes.reads_per_run); stores.len()];
    for r in 0..sizes.reads_per_run {
        let pick = rng.next_u64();
        for i in 0..stores.len() {
            let idx = (i + r + run) % stores.len();
            let (first, last) = bounds[idx];
            let span = last - first + 1 - sizes.read_len as u64;
            let start = first + pick % span;
            let t = Instant::now();
            let (n, bytes) = stores[idx].read_range(start, sizes.read_len)?;
            lat[idx].push(t.elapsed());
            if n != sizes.read_len || bytes != n * RECORD_LEN {
                return Err(format!("short read at {start}: {n} events").into());
            }
        }
    }
    Ok(lat)
}

struct Big {
    fill_1m: Duration,
    fill_1m_events: u64,
    space_1m: (u64, u64, usize),
    reads: Vec<f64>,
    read_lat: Vec<Duration>,
    retention_batches: Vec<f64>,
    retention_total_ms: f64,
    first_after_retention_ms: Vec<f64>,
    read_front_after_retention_ms: Vec<f64>,
    opens: Vec<(String, OpenStats)>,
    big_target: u64,
    big_reached: u64,
    big_fill: Duration,
    big_written: u64,
    space_big: (u64, u64, usize),
}

fn bench_big(root: &Path, sizes: &Sizes, out: &mut String) -> Res<()> {
    let engines = [Engine::Redb, Engine::Fjall];
    let dirs: Vec<PathBuf> = engines
        .iter()
        .map(|&e| engine_dir(root, e, "big"))
        .collect();
    let mut res: Vec<Big> = Vec::new();

    // Fill both to base_events with durable 1024-event commits (the realistic group commit).
    for (&e, dir) in engines.iter().zip(&dirs) {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        let store = Store::create(e, dir)?;
        let (n, took) = fill(&store, e, 0, sizes.base_events, 1024, None)?;
        store.close()?;
        let space = disk_usage(dir)?;
        log(format!(
            "{} filled {n} in {:.1}s, {}",
            e.name(),
            took.as_secs_f64(),
            fmt_mib(space.1)
        ));
        res.push(Big {
            fill_1m: took,
            fill_1m_events: n,
            space_1m: space,
            reads: Vec::new(),
            read_lat: Vec::new(),
            retention_batches: Vec::new(),
            retention_total_ms: 0.0,
            first_after_retention_ms: Vec::new(),
            read_front_after_retention_ms: Vec::new(),
            opens: Vec::new(),
            big_target: 0,
            big_reached: 0,
            big_fill: Duration::ZERO,
            big_written: 0,
            space_big: (0, 0, 0),
        });
    }

    // Open times at base size.
    let label_base = format!("{}", sizes.base_events);
    open_matrix(
        &engines,
        &dirs,
        &mut res,
        sizes,
        &label_base,
        sizes.crash_reps_base,
    )?;

    // Range reads at base size (alternating engines).
    let stores: Vec<Store> = engines
        .iter()
        .zip(&dirs)
        .map(|(&e, d)| Store::open(e, d))
        .collect::<Res<_>>()?;
    let bounds: Vec<(u64, u64)> = stores
        .iter()
        .map(|s| Ok((s.first_seq()?.unwrap_or(0), s.last_seq()?.unwrap_or(0))))
        .collect::<Res<_>>()?;
    for run in 0..sizes.runs {
        let lat = bench_reads(&stores, &bounds, sizes, run)?;
        for (idx, l) in lat.into_iter().enumerate() {
            let r = l.len() as f64 / l.iter().sum::<Duration>().as_secs_f64();
            log(format!("{} reads run {run}: {r:.0}/s", engines[idx].name()));
            res[idx].reads.push(r);
            res[idx].read_lat.extend(l);
        }
    }

    // Retention: delete the oldest retention_total in durable commits of retention_batch.
    for (idx, store) in stores.iter().enumerate() {
        let first = bounds[idx].0;
        let t0 = Instant::now();
        let mut at = first;
        while at < first + sizes.retention_total {
            let end = at + sizes.retention_batch;
            let t = Instant::now();
            store.delete_front(at, end)?;
            res[idx].retention_batches.push(ms(t.elapsed()));
            at = end;
        }
        res[idx].retention_total_ms = ms(t0.elapsed());
        for _ in 0..5 {
            let t = Instant::now();
            let f = store.first_seq()?;
            res[idx].first_after_retention_ms.push(ms(t.elapsed()));
            if f != Some(at) {
                return Err(format!(
                    "{}: first seq after retention {f:?}, expected {at}",
                    engines[idx].name()
                )
                .into());
            }
            let t = Instant::now();
            store.read_range(0, sizes.read_len)?;
            res[idx].read_front_after_retention_ms.push(ms(t.elapsed()));
        }
        log(format!(
            "{} retention {:.0} ms",
            engines[idx].name(),
            res[idx].retention_total_ms
        ));
    }
    for s in stores {
        s.close()?;
    }

    // Grow to big_events with durable 8192-event commits; fall back if it would take too long.
    for (idx, (&e, dir)) in engines.iter().zip(&dirs).enumerate() {
        let store = Store::open(e, dir)?;
        let from = store.last_seq()?.map_or(0, |s| s + 1);
        // Probe 1M events to project the rate.
        let probe_to = from + sizes.base_events.min(1_000_000);
        let (n, probe) = fill(&store, e, from, probe_to, 8192, None)?;
        let rate = (n - from) as f64 / probe.as_secs_f64();
        let live_after_probe = n - (bounds[idx].0 + sizes.retention_total);
        let projected = (sizes.big_events.saturating_sub(live_after_probe)) as f64 / rate;
        let target_live =
            if projected * 1.2 + probe.as_secs_f64() > sizes.big_deadline.as_secs_f64() {
                sizes.big_fallback
            } else {
                sizes.big_events
            };
        let target_key = n + target_live.saturating_sub(live_after_probe);
        log(format!(
            "{} growing to {target_live} live events (rate {rate:.0}/s)",
            e.name()
        ));
        let remaining = sizes.big_deadline.saturating_sub(probe);
        let (reached, took) = fill(&store, e, n, target_key, 8192, Some(remaining))?;
        store.close()?;
        let live = reached - (bounds[idx].0 + sizes.retention_total);
        res[idx].big_target = target_live;
        res[idx].big_reached = live;
        res[idx].big_fill = probe + took;
        res[idx].big_written = reached - from;
        res[idx].space_big = disk_usage(dir)?;
        log(format!(
            "{} grown to {live} live events in {:.1}s",
            e.name(),
            (probe + took).as_secs_f64()
        ));
    }
    let label_big = format!(
        "{}",
        res.iter().map(|r| r.big_reached).min().unwrap_or(0).max(1) / 1_000_000 * 1_000_000
    );
    let label_big = if label_big == "0" {
        "big".to_string()
    } else {
        label_big
    };
    open_matrix(
        &engines,
        &dirs,
        &mut res,
        sizes,
        &label_big,
        sizes.crash_reps_big,
    )?;

    for dir in &dirs {
        fs::remove_dir_all(dir)?;
    }

    report_big(&engines, &mut res, sizes, out)
}

/// Clean (warm and cold) and crash (warm and cold; redb with and without quick-repair) reopens.
fn open_matrix(
    engines: &[Engine],
    dirs: &[PathBuf],
    res: &mut [Big],
    sizes: &Sizes,
    label: &str,
    crash_reps: usize,
) -> Res<()> {
    for cold in [false, true] {
        let temp = if cold { "cold" } else { "warm" };
        for (idx, (&e, dir)) in engines.iter().zip(dirs).enumerate() {
            let st = clean_opens(e, dir, sizes.open_reps, cold)?;
            log(format!(
                "{} {label} clean {temp}: {:?}",
                e.name(),
                st.ready_ms
            ));
            res[idx]
                .opens
                .push((format!("{label}|clean, {temp} cache"), st));
        }
    }
    for cold in [false, true] {
        let temp = if cold { "cold" } else { "warm" };
        for (idx, (&e, dir)) in engines.iter().zip(dirs).enumerate() {
            let modes: &[bool] = if e == Engine::Redb {
                &[false, true]
            } else {
                &[false]
            };
            for &qr in modes {
                let st = crash_opens(e, dir, qr, crash_reps, cold)?;
                let what = if qr {
                    "SIGKILL (writer used quick_repair)"
                } else {
                    "SIGKILL"
                };
                log(format!(
                    "{} {label} {what} {temp}: {:?} repairs={}",
                    e.name(),
                    st.ready_ms,
                    st.repair_calls
                ));
                res[idx]
                    .opens
                    .push((format!("{label}|{what}, {temp} cache"), st));
            }
        }
    }
    // fjall replays its journal (up to a whole memtable, 64 MiB by default) at open; flushing
    // the memtable before the clean close avoids that. (redb: the same clean close again.)
    for (idx, (&e, dir)) in engines.iter().zip(dirs).enumerate() {
        let store = Store::open(e, dir)?;
        let t = Instant::now();
        store.flush_memtable()?;
        let flush = t.elapsed();
        store.close()?;
        for cold in [false, true] {
            let temp = if cold { "cold" } else { "warm" };
            let st = clean_opens(e, dir, sizes.open_reps, cold)?;
            log(format!(
                "{} {label} clean after memtable flush ({:.0} ms) {temp}: {:?}",
                e.name(),
                ms(flush),
                st.ready_ms
            ));
            res[idx].opens.push((
                format!("{label}|clean, fjall memtable flushed before close, {temp} cache"),
                st,
            ));
        }
    }
    Ok(())
}

fn report_big(engines: &[Engine], res: &mut [Big], sizes: &Sizes, out: &mut String) -> Res<()> {
    let (r, f) = (0usize, 1usize);
    debug_assert_eq!(engines, [Engine::Redb, Engine::Fjall]);

    writeln!(
        out,
        "## Fill (durable commits of 1024 events, empty → {} events)\n",
        sizes.base_events
    )?;
    writeln!(out, "| | redb | fjall | fjall/redb |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    let rate = |b: &Big| b.fill_1m_events as f64 / b.fill_1m.as_secs_f64();
    writeln!(
        out,
        "| time | {:.1} s | {:.1} s | {} |",
        res[r].fill_1m.as_secs_f64(),
        res[f].fill_1m.as_secs_f64(),
        ratio(res[f].fill_1m.as_secs_f64(), res[r].fill_1m.as_secs_f64())
    )?;
    writeln!(
        out,
        "| events/s | {} | {} | {} |",
        fmt_rate(rate(&res[r])),
        fmt_rate(rate(&res[f])),
        ratio(rate(&res[f]), rate(&res[r]))
    )?;
    let grow = |b: &Big| b.big_written as f64 / b.big_fill.as_secs_f64();
    writeln!(
        out,
        "| later growth in durable commits of 8192 (redb {} / fjall {} events written) | {:.1} s, {} ev/s | {:.1} s, {} ev/s | {} (events/s) |\n",
        res[r].big_written,
        res[f].big_written,
        res[r].big_fill.as_secs_f64(),
        fmt_rate(grow(&res[r])),
        res[f].big_fill.as_secs_f64(),
        fmt_rate(grow(&res[f])),
        ratio(grow(&res[f]), grow(&res[r]))
    )?;

    writeln!(
        out,
        "## 3. Range reads: {} consecutive events from a random seq, {} events stored ({} runs × {} reads)\n",
        sizes.read_len, sizes.base_events, sizes.runs, sizes.reads_per_run
    )?;
    writeln!(out, "| | redb | fjall | fjall/redb |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    let (rr, fr) = (median(&mut res[r].reads), median(&mut res[f].reads));
    writeln!(
        out,
        "| reads/s (median) | {rr:.0} | {fr:.0} | {} |",
        ratio(fr, rr)
    )?;
    writeln!(
        out,
        "| events/s | {} | {} | |",
        fmt_rate(rr * sizes.read_len as f64),
        fmt_rate(fr * sizes.read_len as f64)
    )?;
    res[r].read_lat.sort();
    res[f].read_lat.sort();
    for p in [50.0, 99.0] {
        let (a, b) = (pct_ms(&res[r].read_lat, p), pct_ms(&res[f].read_lat, p));
        writeln!(
            out,
            "| read latency p{p:.0} | {} | {} | {} |",
            fmt_ms(a),
            fmt_ms(b),
            ratio(b, a)
        )?;
    }
    writeln!(
        out,
        "| µs per read (mean) | {:.0} | {:.0} | |\n",
        1e6 / rr,
        1e6 / fr
    )?;

    writeln!(
        out,
        "## 4. Retention: delete the oldest {} events in durable commits of {}\n",
        sizes.retention_total, sizes.retention_batch
    )?;
    writeln!(
        out,
        "| | redb (`retain_in(..end)`) | fjall (point tombstones in a batch) | fjall/redb |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    writeln!(
        out,
        "| total | {} | {} | {} |",
        fmt_ms(res[r].retention_total_ms),
        fmt_ms(res[f].retention_total_ms),
        ratio(res[f].retention_total_ms, res[r].retention_total_ms)
    )?;
    let (rb, fb) = (
        median(&mut res[r].retention_batches),
        median(&mut res[f].retention_batches),
    );
    writeln!(
        out,
        "| per commit (median) | {} | {} | {} |",
        fmt_ms(rb),
        fmt_ms(fb),
        ratio(fb, rb)
    )?;
    let (ra, fa) = (
        median(&mut res[r].first_after_retention_ms),
        median(&mut res[f].first_after_retention_ms),
    );
    writeln!(
        out,
        "| then: find oldest seq (median of 5) | {} | {} | {} |",
        fmt_ms(ra),
        fmt_ms(fa),
        ratio(fa, ra)
    )?;
    let (ra, fa) = (
        median(&mut res[r].read_front_after_retention_ms),
        median(&mut res[f].read_front_after_retention_ms),
    );
    writeln!(
        out,
        "| then: read {} from seq 0 (i.e. from the new front, median of 5) | {} | {} | {} |\n",
        sizes.read_len,
        fmt_ms(ra),
        fmt_ms(fa),
        ratio(fa, ra)
    )?;

    writeln!(out, "## 5. Open time (open + find the newest seq)\n")?;
    for b in res.iter() {
        if b.big_reached < b.big_target {
            writeln!(
                out,
                "Note: a fill stopped at its time limit: {} of {} live events.\n",
                b.big_reached, b.big_target
            )?;
        }
    }
    writeln!(
        out,
        "Bigger database: redb grown to {} live events in {:.0} s, fjall to {} in {:.0} s (durable commits of 8192). \
         Clean: median of {}. SIGKILL: the writer child (durable 1024-event commits) is killed ~0.4 s after its first \
         commit, then the parent reopens; median of {} (base) / {} (big) crashes, each checked by reading back the \
         newest 1000 events. \"repair\" is how many times redb's repair callback ran over those reopens.\n",
        res[r].big_reached,
        res[r].big_fill.as_secs_f64(),
        res[f].big_reached,
        res[f].big_fill.as_secs_f64(),
        sizes.open_reps,
        sizes.crash_reps_base,
        sizes.crash_reps_big
    )?;
    writeln!(
        out,
        "| events | reopen after | redb open | redb open+last (min–max) | redb repair | fjall open | fjall open+last (min–max) | fjall journal replayed | fjall/redb (open+last) |"
    )?;
    writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let redb_opens: Vec<(String, OpenStats)> = std::mem::take(&mut res[r].opens);
    let mut fjall_opens: Vec<(String, OpenStats)> = std::mem::take(&mut res[f].opens);
    for (key, mut st) in redb_opens {
        let (events, what) = key.split_once('|').unwrap_or(("?", key.as_str()));
        let (ro, rl) = (median(&mut st.open_ms), median(&mut st.ready_ms));
        let range = |xs: &[f64]| {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(0.0, f64::max);
            format!("({}–{})", fmt_ms(lo), fmt_ms(hi))
        };
        let r_range = range(&st.ready_ms);
        let fj = fjall_opens.iter_mut().find(|(k, _)| *k == key);
        let (fo, fl, f_range, jnl) = match fj {
            Some((_, fs)) => (
                median(&mut fs.open_ms),
                median(&mut fs.ready_ms),
                range(&fs.ready_ms),
                fmt_mib(median(&mut fs.journal_bytes) as u64),
            ),
            None => (f64::NAN, f64::NAN, String::new(), "—".into()),
        };
        let dash = |x: f64| {
            if x.is_nan() {
                "—".to_string()
            } else {
                fmt_ms(x)
            }
        };
        writeln!(
            out,
            "| {events} | {what} | {} | {} {r_range} | {} | {} | {} {f_range} | {jnl} | {} |",
            fmt_ms(ro),
            fmt_ms(rl),
            st.repair_calls,
            dash(fo),
            dash(fl),
            if fl.is_nan() {
                "—".into()
            } else {
                ratio(fl, rl)
            }
        )?;
    }
    writeln!(out)?;

    writeln!(out, "## 6. Disk space (after a clean close)\n")?;
    writeln!(out, "| | redb | fjall | fjall/redb |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    let raw = sizes.base_events * (RECORD_LEN as u64 + 8);
    writeln!(
        out,
        "| {} events, allocated (raw key+value = {}) | {} | {} | {} |",
        sizes.base_events,
        fmt_mib(raw),
        fmt_mib(res[r].space_1m.1),
        fmt_mib(res[f].space_1m.1),
        ratio(res[f].space_1m.1 as f64, res[r].space_1m.1 as f64)
    )?;
    writeln!(
        out,
        "| {} events, apparent size | {} | {} | {} |",
        sizes.base_events,
        fmt_mib(res[r].space_1m.0),
        fmt_mib(res[f].space_1m.0),
        ratio(res[f].space_1m.0 as f64, res[r].space_1m.0 as f64)
    )?;
    writeln!(
        out,
        "| files | {} | {} | |",
        res[r].space_1m.2, res[f].space_1m.2
    )?;
    writeln!(
        out,
        "| bigger database (redb {} / fjall {} live events, after retention), allocated | {} | {} | {} |\n",
        res[r].big_reached,
        res[f].big_reached,
        fmt_mib(res[r].space_big.1),
        fmt_mib(res[f].space_big.1),
        ratio(res[f].space_big.1 as f64, res[r].space_big.1 as f64)
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn main() -> Res<()> {
    started();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--crash-writer") {
        let engine = Engine::parse(args.get(1).ok_or("engine")?)?;
        let dir = PathBuf::from(args.get(2).ok_or("dir")?);
        let qr = args.get(3).map(String::as_str) == Some("1");
        return run_crash_writer(engine, &dir, qr);
    }
    if args.first().map(String::as_str) == Some("--open-only") {
        // Diagnostics: time one open of an existing database.
        let engine = Engine::parse(args.get(1).ok_or("engine")?)?;
        let dir = PathBuf::from(args.get(2).ok_or("dir")?);
        let (open, ready, store) = timed_open(engine, &dir, false)?;
        if args.get(3).map(String::as_str) == Some("flush") {
            let t = Instant::now();
            store.flush_memtable()?;
            eprintln!("flush {:.1} ms", ms(t.elapsed()));
        }
        let t = Instant::now();
        store.close()?;
        eprintln!(
            "open {:.1} ms, open+last {:.1} ms, close {:.1} ms",
            ms(open),
            ms(ready),
            ms(t.elapsed())
        );
        return Ok(());
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let sizes = if smoke { Sizes::smoke() } else { Sizes::full() };
    // On the repository's own disk by default (`target/tmp-engines`): a tmpfs `/tmp` would
    // make every fsync free and the figures meaningless.
    let root = std::env::var_os("ENGINES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp-engines"),
        PathBuf::from,
    );
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(&root)?;

    let mut out = String::new();
    writeln!(out, "# redb 4 vs fjall 3\n")?;
    writeln!(
        out,
        "Records: {RECORD_LEN} bytes, u64 keys (redb `u64`, fjall big-endian 8 bytes). Cache: {} for both. \
         Directory: {}.\n",
        fmt_mib(CACHE_BYTES as u64),
        root.display()
    )?;
    let sections = [
        !args.iter().any(|a| a == "--skip-appends"),
        !args.iter().any(|a| a == "--skip-big"),
    ];
    let result = (|| -> Res<()> {
        if sections[0] {
            bench_appends(&root, &sizes, &mut out)?;
            print!("{out}");
            out.clear();
        }
        if sections[1] {
            bench_big(&root, &sizes, &mut out)?;
            print!("{out}");
            out.clear();
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&root);
    log("done");
    result
}
