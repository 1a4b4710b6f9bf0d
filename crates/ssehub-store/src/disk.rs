//! [`DiskStore`]: the event log in one redb file, `<data dir>/ssehub.redb`.
//!
//! # Tables
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | name | `format` = `ssehub-store/1`; `log_id` (u32le); `last_seq`, `count`, `bytes`, `unsynced` (u64le) |
//! | `events` | seq (u64) | the [record](crate::record) of the event |
//! | `by_topic` | (topic, seq) | event size (u64): the events of one topic, in order |
//! | `topics` | topic | count, bytes, dropped_upto (3 × u64le) |
//! | `published` | publisher id | seq (u64): the retained event with that id |
//! | `keys` | (topic, key) | seq (u64): the newest retained event of that key in that topic |
//! | `keyed` | (topic, seq) | key: the events `keys` points to, per topic in order (snapshots) |
//!
//! Sizes (`bytes`, and the values of `by_topic`) are events' SSE encodings, with the `id:`
//! line at its longest ([`record::size`]): what memory holds for an event when it is read,
//! and what the body limit bounds. (Stores written before counted record lengths; the two are
//! close, and the counts only ever saturate at zero.)
//!
//! `by_topic` makes the resume of a quiet topic read only that topic's events, however many
//! others were published since; `topics` carries per-topic retention and `dropped_upto`, the
//! newest event retention removed from that topic, which is how a resume from an id older than
//! that is detected and answered with a gap notice instead of a silent loss.
//!
//! `published` is the index of publishers' own ids (`NewEvent::id`): an append checks it in
//! its own write transaction and refuses the whole batch when an id is already there
//! (`StoreError::IdConflict`), and the sweep removes a deleted event's id in the transaction
//! that deletes the event. Created by the first append that writes to it (a store from before
//! publisher ids has none, and reads as an empty index).
//!
//! `keys` and `keyed` index events' keys (`NewEvent::key`) the same way: the append that
//! stores a keyed event points its (topic, key) at it and takes the entry of the key's previous
//! event out of `keyed`, in one transaction; the sweep that deletes a key's newest event removes
//! both entries. A snapshot reads `keyed` per matching topic (the exact topics of the selector,
//! or every known topic the selector matches), merged in sequence order like `by_topic`.
//!
//! # Durability and concurrency
//!
//! Appends arrive from the hub's single commit task, already batched (group commit). Each batch
//! is one redb write transaction, committed with `Durability::Immediate` (one fsync) under
//! [`FsyncPolicy::Always`]. The retention sweep deletes in small transactions of its own. Both
//! hold `write_lock` for the transaction and the in-memory bookkeeping that follows it, so the
//! counters never disagree with the file. Reads use redb's MVCC snapshots and never wait.
//!
//! # Ids are never given twice
//!
//! Under [`FsyncPolicy::Interval`] a batch is acknowledged (and its ids handed out) before it
//! is durable: a crash of the process or of the machine takes back what was committed since the
//! last fsync, and the sequence would then continue from the last durable event, giving the
//! lost events' ids to new ones — a client holding such an id would silently skip events. So
//! a run under `Interval` sets `meta.unsynced` (durably) when it opens the store and clears it
//! when it closes cleanly; a start that finds it set knows acknowledged events may be gone and
//! starts a **new log id**. Every id from before then is unknown to the hub: its holder gets
//! the gap notice and the retained history, never a silent skip. The same happens when the
//! store is reopened after an I/O error ([`Inner::reopen`]) and the file turns out to be
//! behind what was acknowledged. Under [`FsyncPolicy::Always`] nothing acknowledged can be
//! lost, and the log id only changes with a new data dir.
//!
//! # Layout
//!
//! - `disk.rs` — [`DiskStore`], its [`Store`] implementation, the handle shared by the rest.
//! - `disk/open.rs` — [`OpenError`]; opening, validating, the clean close, the reopen after an
//!   I/O error.
//! - `disk/state.rs` — the counters kept in memory, and the sweep's announce/restore of them.
//! - `disk/append.rs` — appends (group commit) and the interval fsync.
//! - `disk/blocking.rs` — running a commit on the blocking pool, its caller woken promptly.
//! - `disk/read.rs` — reads, from the tail cache or the file.
//! - `disk/tail.rs` — the tail cache.
//! - `disk/retention.rs` — which events break a retention bound: pure, no redb.
//! - `disk/sweep.rs` — the retention sweep, applying those decisions to the file.

mod append;
mod blocking;
mod open;
mod read;
mod retention;
mod state;
mod sweep;
mod tail;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};
use ssehub_core::{
    Bounds, BoxFuture, LogId, NewEvent, ReadPage, Selector, Store, StoreError, StoredEvent,
};

pub use self::open::OpenError;
use self::open::{load, open_db, prepare};
use self::state::{State, TopicStats};
use self::tail::Tail;
use crate::options::{DiskOptions, FsyncPolicy};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
const BY_TOPIC: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("by_topic");
const TOPICS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("topics");
const PUBLISHED: TableDefinition<'_, &str, u64> = TableDefinition::new("published");
const KEYS: TableDefinition<'_, (&str, &str), u64> = TableDefinition::new("keys");
const KEYED: TableDefinition<'_, (&str, u64), &str> = TableDefinition::new("keyed");

/// The value of `meta.format` this code reads and writes.
pub const FORMAT: &str = "ssehub-store/1";
/// The file name inside the data dir.
pub const FILE_NAME: &str = "ssehub.redb";

/// How many events one sweep transaction deletes at most.
const SWEEP_BATCH: usize = 2_000;
/// How many events one read looks at before returning (sparse selectors on the full scan).
const SCAN_LIMIT: usize = 4_096;

enum Db {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
    /// Between closing and reopening the file after an I/O error.
    Closed,
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::Error> {
        Ok(match self {
            Db::ReadWrite(db) => db.begin_read()?,
            Db::ReadOnly(db) => db.begin_read()?,
            Db::Closed => return Err(redb::Error::DatabaseClosed),
        })
    }
}

struct Inner {
    path: PathBuf,
    /// The log id; it changes only when acknowledged events were lost (see the module doc).
    log: AtomicU32,
    options: DiskOptions,
    db: RwLock<Arc<Db>>,
    /// Held across each write transaction and the bookkeeping after it.
    write_lock: Mutex<()>,
    state: Mutex<State>,
    tail: Mutex<Tail>,
    /// Per compacted topic, the sequence number compaction looked at last: each sweep goes on
    /// after it (and starts over once past the end), so one sweep reads a bounded part.
    compacted_to: Mutex<HashMap<Arc<str>, u64>>,
    /// Appends not yet fsync'd (under [`FsyncPolicy::Interval`]).
    dirty: std::sync::atomic::AtomicBool,
}

/// The durable event log: see the crate documentation for the format. Cheap to clone.
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.inner.path)
            .field("log", &self.inner.log())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn u64_at(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, redb::Error> {
    Ok(meta
        .get(key)?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes)))
}

impl DiskStore {
    /// Opens (or creates) the store in `dir`. Must be called inside a tokio runtime when
    /// `options` ask for background work (retention sweeps, interval fsyncs): those tasks run
    /// until the last clone of the store is dropped.
    ///
    /// A read-only `dir` is opened read-only: everything stored can be read and resumed from,
    /// and every append fails with [`StoreError::ReadOnly`].
    ///
    /// Appends must run on a tokio runtime with I/O enabled (`enable_io`, or `enable_all`):
    /// each commit wakes its caller through the runtime's I/O driver (`disk/blocking.rs`).
    ///
    /// # Errors
    ///
    /// An [`OpenError`] when the directory holds something else, the file is corrupt, another
    /// process uses it, or I/O fails.
    pub fn open(dir: &Path, options: DiskOptions) -> Result<DiskStore, OpenError> {
        let io = |source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io)?;
            if entries.next().is_some() {
                return Err(OpenError::Foreign(dir.to_path_buf()));
            }
        }
        let db = open_db(&path)?;
        prepare(&db, &path, options.fsync)?;
        let (log, state) = load(&db, &path)?;
        tracing::info!(
            path = %path.display(),
            log = %log,
            events = state.count,
            last_seq = state.last,
            read_only = matches!(db, Db::ReadOnly(_)),
            "opened the event store"
        );
        let store = DiskStore {
            inner: Arc::new(Inner {
                path,
                log: AtomicU32::new(log.0),
                options,
                db: RwLock::new(Arc::new(db)),
                write_lock: Mutex::new(()),
                state: Mutex::new(state),
                tail: Mutex::new(Tail::default()),
                compacted_to: Mutex::new(HashMap::new()),
                dirty: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        store.spawn_background();
        Ok(store)
    }

    /// Closes the store cleanly, once every other handle is gone (waiting up to `timeout`
    /// for in-flight reads and appends to let go). A clean close lets the next start skip
    /// redb's crash check. Returns whether it closed cleanly.
    pub fn close(self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while Arc::strong_count(&self.inner) > 1 {
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    "the store is still in use; leaving it to the crash check of the next start"
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.inner.flush();
        let clean = self.inner.mark_synced();
        drop(self);
        clean
    }

    /// The number of events retained.
    pub fn len(&self) -> u64 {
        self.inner.lock_state().count
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of records retained.
    pub fn retained_bytes(&self) -> u64 {
        self.inner.lock_state().bytes
    }

    /// Runs one retention sweep now (the background task does this every
    /// `retention.sweep_every`). Returns how many events were removed.
    ///
    /// # Errors
    ///
    /// The store error of a failed deletion.
    pub fn sweep(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let removed = self.inner.sweep_once()?;
            total += removed;
            if removed < SWEEP_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    fn spawn_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.options.retention.sweep_every;
        let retention = &self.inner.options.retention;
        if retention.hub.is_bounded() || !retention.topics.is_empty() {
            let weak = weak.clone();
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let store = DiskStore { inner };
                    let result = tokio::task::spawn_blocking(move || store.sweep()).await;
                    match result {
                        Ok(Ok(0)) => {}
                        Ok(Ok(n)) => tracing::debug!(removed = n, "retention sweep"),
                        Ok(Err(error)) => tracing::warn!(%error, "retention sweep failed"),
                        Err(error) => tracing::error!(%error, "retention sweep panicked"),
                    }
                }
            });
        }
        if let FsyncPolicy::Interval(every) = self.inner.options.fsync {
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let _ = tokio::task::spawn_blocking(move || inner.flush()).await;
                }
            });
        }
    }
}

/// Writes what a transaction changed in the counters: the stats of the `touched` topics, and
/// the totals.
fn write_counters(
    topics: &mut redb::Table<'_, &'static str, &'static [u8]>,
    meta: &mut redb::Table<'_, &'static str, &'static [u8]>,
    touched: &HashMap<Arc<str>, TopicStats>,
    count: u64,
    bytes: u64,
) -> Result<(), StoreError> {
    for (topic, stats) in touched {
        topics
            .insert(&**topic, &stats.to_bytes()[..])
            .map_err(store_error)?;
    }
    meta.insert("count", &count.to_le_bytes()[..])
        .map_err(store_error)?;
    meta.insert("bytes", &bytes.to_le_bytes()[..])
        .map_err(store_error)?;
    Ok(())
}

fn store_error(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match &e {
        redb::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::Full(io.to_string())
            }
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly(io.to_string())
            }
            _ => StoreError::Io(e.to_string()),
        },
        _ => StoreError::Io(e.to_string()),
    }
}

impl Inner {
    fn log(&self) -> LogId {
        LogId(self.log.load(Ordering::Acquire))
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db(&self) -> Arc<Db> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A write transaction, reopening the database once if an earlier I/O error (a full
    /// disk, say) left redb refusing to write until it is reopened.
    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.begin_write_raw()?;
        // Every commit, so that whichever is last before a crash carries the allocator state.
        txn.set_quick_repair(self.options.quick_repair);
        Ok(txn)
    }

    fn begin_write_raw(&self) -> Result<redb::WriteTransaction, StoreError> {
        let db = self.db();
        let Db::ReadWrite(rw) = &*db else {
            return Err(StoreError::ReadOnly(format!(
                "the data dir of {} is read-only",
                self.path.display()
            )));
        };
        match rw.begin_write() {
            Ok(txn) => Ok(txn),
            Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)) => {
                drop(db);
                self.reopen()?;
                match &*self.db() {
                    Db::ReadWrite(rw) => rw.begin_write().map_err(store_error),
                    _ => Err(StoreError::Io("the store could not be reopened".into())),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

impl Store for DiskStore {
    fn log_id(&self) -> LogId {
        self.inner.log()
    }

    fn bounds(&self) -> Bounds {
        let s = self.inner.lock_state();
        Bounds {
            first: s.first,
            last: s.last,
        }
    }

    fn retained_from(&self, selector: &Selector) -> u64 {
        let s = self.inner.lock_state();
        let mut from = s.first;
        if s.max_dropped < from {
            // No topic lost an event that the log still holds (the usual case: hub-wide
            // retention only), so no per-topic floor is above the log's.
            return from;
        }
        for pattern in selector.patterns() {
            match pattern.as_topic() {
                Some(topic) => {
                    if let Some(stats) = s.topics.get(topic.as_str()) {
                        from = from.max(stats.dropped_upto + 1);
                    }
                }
                None => {
                    for (name, stats) in &s.topics {
                        if stats.dropped_upto + 1 > from
                            && ssehub_core::Topic::new(name).is_ok_and(|t| pattern.matches(&t))
                        {
                            from = stats.dropped_upto + 1;
                        }
                    }
                }
            }
        }
        from
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            blocking::run(move || inner.append_blocking(events))
                .await
                .map_err(|e| StoreError::Io(format!("the append task failed: {e}")))?
        })
    }

    fn find_id(&self, id: &str) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let inner = self.inner.clone();
        let id = id.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.find_id_blocking(&id))
                .await
                .map_err(|e| StoreError::Io(format!("the lookup task failed: {e}")))?
        })
    }

    fn read(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        let limit = limit.max(1);
        if let Some(page) = self
            .inner
            .read_tail(after, until, &selector, limit, max_bytes)
        {
            return Box::pin(std::future::ready(Ok(page)));
        }
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                inner.read_blocking(after, until, &selector, limit, max_bytes)
            })
            .await
            .map_err(|e| StoreError::Io(format!("the read task failed: {e}")))?
        })
    }

    fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        let limit = limit.max(1);
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                inner.snapshot_blocking(after, until, &selector, limit, max_bytes)
            })
            .await
            .map_err(|e| StoreError::Io(format!("the snapshot task failed: {e}")))?
        })
    }
}
