//! The durable embedded event log of ssehub: the default [`Store`](ssehub_core::Store).
//!
//! History lives in one [redb](https://docs.rs/redb) file in the data dir. A publish is
//! acknowledged once its batch is committed with an fsync ([`FsyncPolicy::Always`], the
//! default), so an acknowledged event survives `kill -9`. Ids are `<log>-<seq>`: the sequence
//! continues across restarts, and the log id, chosen when the store is created, makes ids from
//! a wiped or different data dir recognisable as foreign. Retention (by count, bytes and age,
//! for the whole hub and per topic pattern) runs in the background in small transactions.
//!
//! `docs/storage.md` in the repository explains the choice of redb, the figures behind it, and
//! the on-disk format; the module docs of `disk.rs` and `record.rs` specify the format.
//!
//! # Layout
//!
//! - `disk.rs` — [`DiskStore`]: open/validate, append, read, retention sweep, fsync policy; one
//!   file each under `disk/`, retention decisions (`disk/retention.rs`) pure and without redb.
//! - `record.rs` — the binary record of one event.
//! - `options.rs` — [`DiskOptions`], [`FsyncPolicy`], [`Retention`], [`RetentionLimits`].

mod disk;
mod options;
mod record;

pub use disk::{DiskStore, FILE_NAME, FORMAT, OpenError};
pub use options::{Compaction, DiskOptions, FsyncPolicy, Retention, RetentionLimits, TopicRule};
pub use record::CorruptRecord;
