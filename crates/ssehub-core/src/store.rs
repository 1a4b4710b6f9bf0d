//! The `Store` trait: where history lives. The hub core depends on this trait only, and each
//! backend (in memory here, the embedded durable log, Redis for clusters) implements it.
//!
//! # Contract
//!
//! - One log, one sequence: [`Store::append`] gives the events consecutive sequence numbers
//!   after the last one, in the order given, and returns only once they are stored as durably
//!   as the backend promises. The hub calls it from a single task, so appends never race.
//! - [`Store::read`] returns events in sequence order. It may stop early (after scanning as
//!   much as it likes) and says how far it got in [`ReadPage::scanned_to`], so a reader of a
//!   sparse topic never holds the store for long.
//! - Retention may drop old events at any time; [`Store::bounds`] says what is left. It moves
//!   [`Store::retained_from`] up *before* the events below it are gone, so a reader that sees
//!   the floor unmoved after a read knows the read was complete (ARCHITECTURE.md, invariant 8).
//! - Publisher ids ([`NewEvent::id`]): the store keeps an index from each retained event's
//!   publisher id to its sequence number ([`Store::find_id`]). [`Store::append`] is all or
//!   nothing: when an event of the batch has a publisher id that a retained event already has
//!   (or that another event of the batch has), nothing is appended and it fails with
//!   [`StoreError::IdConflict`] — checked in the same atomic step as the append, so that two
//!   hubs appending one id to a shared log cannot both succeed. Retention removes a deleted
//!   event's id from the index with the event: its id is then unknown, and free again.
//! - Keys ([`NewEvent::key`], the `key.rs` module doc): the store keeps an index from each
//!   (topic, key) of the retained events to the sequence number of the key's newest event in
//!   that topic, updated in the same atomic step as the append (a reader never sees an event
//!   without its index entry, nor an entry of a key's older event after a newer one is
//!   stored). Retention that deletes a key's newest event removes its entry (the key then has
//!   no value; its older events are gone already, or going). [`Store::snapshot`] reads the
//!   events the index points to.
//! - A log that may have lost acknowledged events takes a new [`LogId`], so that no id is ever
//!   given to two events (ARCHITECTURE.md, invariant 6).
//! - A store shared by several hubs (a cluster) also appends events that other hubs publish,
//!   which this hub must fan out too, and in the one order of the shared log. Such a store
//!   offers an [`OrderedFeed`] ([`Store::ordered_feed`]): every event of the log after a given
//!   sequence number, its own appends included, in sequence order. A hub over it fans out only
//!   from the feed, never straight after its own append, so that it cannot deliver its own
//!   event before an earlier one appended by another hub. Stores of one hub offer none, and
//!   the hub fans out after each append as before.
//! - Such a store may also carry the hub's live-only events (never stored: Mercure's
//!   subscription updates, [`Hub::publish_live`](crate::Hub::publish_live)) to the other hubs
//!   and theirs to this one ([`Store::live_relay`]), best effort: they have no id and no
//!   history, so one lost on the way is lost, and a hub never gets its own back.
//!
//! # Who produces the SSE bytes
//!
//! The core does, not the backend: a store gives each event its sequence number and makes the
//! [`StoredEvent`] with [`StoredEvent::new`], which encodes it (`id:`, `event:`, `data:`,
//! `retry:`) into [`StoredEvent::encoded`] once, with `ssehub-wire`'s encoder. Those bytes are
//! what every subscriber is sent, shared, never re-encoded per subscriber (ARCHITECTURE.md,
//! invariant 9, and "Who produces SSE bytes"). A backend never writes SSE text itself; one
//! that keeps events in another form (the disk store's records) calls [`StoredEvent::new`]
//! again when it reads them back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::event::{NewEvent, StoredEvent};
use crate::id::LogId;
use crate::topic::Selector;

/// Every event of a shared log after some sequence number, in sequence order, in batches: see
/// [`Store::ordered_feed`]. It ends when the store stops following the log.
pub type OrderedFeed = tokio::sync::mpsc::Receiver<Vec<Arc<StoredEvent>>>;

/// Live-only events between the hubs that share a store: see [`Store::live_relay`].
pub struct LiveRelay {
    /// Where the hub hands its own live-only events, for the other hubs.
    pub outbox: Arc<dyn LiveOutbox>,
    /// The other hubs' live-only events, in batches as they were published; never this hub's
    /// own. It ends when the store stops relaying.
    pub inbox: tokio::sync::mpsc::Receiver<Vec<NewEvent>>,
    /// What the relay did, for `/metrics`.
    pub stats: Arc<RelayStats>,
}

impl std::fmt::Debug for LiveRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRelay")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The sending half of a [`LiveRelay`].
pub trait LiveOutbox: Send + Sync + 'static {
    /// Sends `events` to the other hubs, best effort: it never waits (the hub calls it on a
    /// request's path), and what it cannot send — too large, its queue full, the shared store
    /// unreachable — it drops and counts in [`RelayStats::dropped`].
    fn send(&self, events: &[NewEvent]);
}

/// The counters of a [`LiveRelay`], kept by the store. Monotonic.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Live-only events of this hub sent to the others.
    pub sent: AtomicU64,
    /// Live-only events of other hubs received (and fanned out here).
    pub received: AtomicU64,
    /// Live-only events dropped on the way out or in: too large, a queue full, the shared
    /// store unreachable, or a message that was not one of ours.
    pub dropped: AtomicU64,
}

/// A boxed future, so that `Store` can be used as `dyn Store`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What part of the log is retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The oldest retained sequence number; `last + 1` when nothing is retained.
    pub first: u64,
    /// The newest sequence number ever given; 0 before the first event.
    pub last: u64,
}

/// One page of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadPage {
    /// The matching events, in order.
    pub events: Vec<Arc<StoredEvent>>,
    /// Every event up to this sequence number has been looked at; read on from here.
    pub scanned_to: u64,
}

/// Fills a [`ReadPage`] under the bounds of [`Store::read`], the one rule every backend
/// applies: at most `limit` events, and at most `max_bytes` of their encodings but for a page
/// of one event. A backend offers the matching events in sequence order with
/// [`push`](PageBuilder::push) and stops at the first refused.
#[derive(Debug)]
pub struct PageBuilder {
    page: ReadPage,
    bytes: usize,
    limit: usize,
    max_bytes: usize,
}

impl PageBuilder {
    /// An empty page that, unless ended earlier, says it scanned up to `scanned_to`.
    pub fn new(scanned_to: u64, limit: usize, max_bytes: usize) -> Self {
        PageBuilder {
            page: ReadPage {
                events: Vec::new(),
                scanned_to,
            },
            bytes: 0,
            limit,
            max_bytes,
        }
    }

    /// Adds `event`, the next matching one; when it does not fit, ends the page before it and
    /// returns false (the next read starts with it).
    pub fn push(&mut self, event: Arc<StoredEvent>) -> bool {
        let len = event.encoded.len();
        let events = &self.page.events;
        if events.len() == self.limit || (!events.is_empty() && self.bytes + len > self.max_bytes) {
            self.stop_before(event.seq());
            return false;
        }
        self.bytes += len;
        self.page.events.push(event);
        true
    }

    /// Whether the page has its `limit` of events.
    pub fn is_full(&self) -> bool {
        self.page.events.len() == self.limit
    }

    /// Ends the page before `seq`, whatever that event is (a scan that has looked far enough).
    pub fn stop_before(&mut self, seq: u64) {
        self.page.scanned_to = seq - 1;
    }

    /// The page.
    pub fn finish(self) -> ReadPage {
        self.page
    }
}

/// Why the store failed. Always the server's side; a publisher may retry later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk (or memory budget) is full.
    #[error("the event store is full: {0}")]
    Full(String),
    /// The store cannot be written (a read-only disk, for example).
    #[error("the event store is read-only: {0}")]
    ReadOnly(String),
    /// Any other I/O failure.
    #[error("the event store failed: {0}")]
    Io(String),
    /// The store has been closed.
    #[error("the event store is closed")]
    Closed,
    /// A publisher id of the batch is already the id of a retained event, or of another
    /// event of the batch: the client's fault, not the store's. Nothing was appended.
    #[error("the id {0:?} is already the id of a retained event")]
    IdConflict(String),
}

/// A backend for the event history, under the contract of the module doc: one sequence
/// appended from one task, reads in order, retention that announces its floor first, a new
/// log id when acknowledged events may be lost — and SSE bytes made by the core, never by the
/// backend: every [`StoredEvent`] a store returns comes from [`StoredEvent::new`].
pub trait Store: Send + Sync + 'static {
    /// The identity of this log; ids from other logs are unknown to it.
    fn log_id(&self) -> LogId;

    /// The retained range.
    fn bounds(&self) -> Bounds;

    /// Appends `events` in order and returns them stored, with their ids and encodings (each
    /// made by [`StoredEvent::new`]).
    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>>;

    /// The sequence number of the retained event whose publisher id is `id`, if any (see the
    /// module doc). A resume from a publisher id is a resume from that position.
    fn find_id(&self, id: &str) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// The lowest sequence number from which history matching `selector` is complete: every
    /// matching event at or after it is still retained. A resume from an id below
    /// `retained_from - 1` has lost events, and gets a gap notice. Stores with per-topic
    /// retention override this; the default is the oldest retained event of the log.
    fn retained_from(&self, selector: &Selector) -> u64 {
        let _ = selector;
        self.bounds().first
    }

    /// Reads events matching `selector` with `after < seq <= until`, at most `limit` of them
    /// and at most `max_bytes` of their encodings (`StoredEvent::encoded`), except that a page
    /// always holds the first matching event however large: the page ends before the event
    /// that would pass the bound, and `scanned_to` says so. The byte bound is what keeps a
    /// replay's memory bounded whatever the size of the events: a page is read only when the
    /// connection asks for more, and holds no more than this.
    fn read(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>>;

    /// Reads a page of the snapshot of `selector`'s topics: the events with `after < seq <=
    /// until` that are the newest retained event of their key in one of their topics that
    /// `selector` matches, tombstones left out, in sequence order, under the bounds of
    /// [`read`](Store::read) (`limit`, `max_bytes`, `scanned_to`). An event whose key has a
    /// newer event in that topic is not in it, even if the newer one is past `until`: that one
    /// reaches the subscriber live. Events without a key are never in it.
    fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>>;

    /// For a store shared by several hubs: starts following the log and returns every event
    /// after sequence number `after` (appended by any hub, this one included), in sequence
    /// order, with no gap and no duplicate. A hub that gets a feed fans out from it alone
    /// (see the module doc). `None`, the default, for a store that only this hub appends to.
    fn ordered_feed(&self, after: u64) -> Option<OrderedFeed> {
        let _ = after;
        None
    }

    /// For a store shared by several hubs: starts carrying live-only events between them (see
    /// the module doc). The hub calls it once, when it starts, and fans out what the inbox
    /// brings to its own subscribers. `None`, the default, for a store of one hub: its
    /// live-only events have no one else to reach.
    fn live_relay(&self) -> Option<LiveRelay> {
        None
    }

    /// The last sequence number the log has given, as of now. A store with an
    /// [`ordered_feed`](Store::ordered_feed) asks the shared log itself (its own `bounds`
    /// may lag behind what other hubs appended): a hub asks when a client resumes from an id
    /// its feed has not reached, to tell one another hub has given (wait for the feed) from
    /// one no hub has (forged: the gap notice). The default is `bounds().last`.
    fn last_given(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let last = self.bounds().last;
        Box::pin(async move { Ok(last) })
    }
}
