//! The hub: sequencing, fan-out and subscriptions, over any [`Store`].
//!
//! # Publish path
//!
//! Publishers hand their events to one commit task through a bounded channel. The task takes
//! every request waiting (group commit: one store append for all of them), appends them to the
//! store — which gives them their sequence numbers — then, under the registry lock, fans each
//! stored event out in sequence order, and only then answers the publishers. So an event is
//! never delivered before it is stored, and every subscriber sees one global order
//! (ARCHITECTURE.md, invariant 7).
//!
//! # Subscribe path (ARCHITECTURE.md, invariants 1–3)
//!
//! A subscriber is registered under the same registry lock, which also tells the last
//! sequence number fanned out, `L`. Every event after `L` reaches its live queue; every event
//! up to `L` it needs comes from history. It replays `(X, L]` from the store, then drains the
//! live queue, whose events are all after `L`: no gap, no duplicate, increasing ids. When `X`
//! is unknown or older than what is retained, a `ssehub-gap` event goes out first.
//!
//! # Over a shared store (a cluster)
//!
//! When the store offers an ordered feed ([`Store::ordered_feed`]: other hubs append to the
//! same log), the commit task only appends; a feed task fans out every event of the log, this
//! hub's and the others', in the log's order, and a publisher is answered once its events
//! are stored and, unless the feed lags by more than `FEED_WAIT` (2 s), fanned out here. `L` is
//! then the last sequence number fanned out from the feed. A subscriber may resume from an
//! id of this log that the feed has not reached yet (the publisher's answer came from another
//! hub): the subscription first asks the store for the last sequence number the log has
//! given ([`Store::last_given`]); if the id is within it, its live queue skips every event up
//! to that id and it replays nothing; if not (no hub gave that id: forged, or from a log that
//! lost events), it is an unknown id, as on a hub of its own: the gap notice, then the
//! history. Until the answer, the live queue keeps what comes. A hub over a store of its own
//! has no feed task and none of this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::{NewEvent, StoredEvent};
use crate::id::{EventId, Resume};
use crate::live_queue::{CloseReason, LiveQueue};
use crate::registry::Registry;
use crate::store::{LiveOutbox, OrderedFeed, RelayStats, Store, StoreError};
use crate::subscription::{Gap, GapReason, Subscription};
use crate::topic::Selector;

/// Hub settings (the `[hub]`-level semantics; process knobs live in the binary).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The most bytes queued for one subscriber before it is disconnected as too slow.
    pub subscriber_buffer_bytes: usize,
    /// How often idle streams get a keep-alive comment; `None` for never.
    pub heartbeat: Option<Duration>,
    /// The most events in one store append (one group commit of many publish requests).
    /// Not a client limit: the most events one request may carry is the HTTP layer's
    /// `max_batch_events` (`[limits] max_batch_events`); a request larger than this is still
    /// committed whole, alone.
    pub max_commit_events: usize,
    /// The most events in one replay page (one write to the client).
    pub replay_page_events: usize,
    /// The most bytes (of SSE encoding) in one replay page, but for a page of one event. With
    /// the connection reading a page only once it has written the previous one, this bounds
    /// what a replaying subscriber holds, whatever the size of the events and however slowly
    /// it reads.
    pub replay_page_bytes: usize,
    /// Bounds on each Mercure URI template a client subscribes with.
    pub template_limits: crate::TemplateLimits,
    /// The most bytes of compiled URI templates the hub holds at once (each distinct template
    /// compiled once, shared): past it, subscriptions with a new template are refused.
    pub template_budget_bytes: usize,
    /// The most distinct URI templates the hub holds at once: every event is matched against
    /// each, so this bounds an event's matching cost; past it, new templates are refused.
    pub template_max_count: usize,
    /// Whether the fan-out may write an event straight to the socket of a subscriber whose
    /// connection is idle and writable, instead of queueing it and waking the connection
    /// (`direct.rs`; the connection layer must offer a sink too). Off by default: measured,
    /// it costs more CPU per delivery than the queue and serialises every send on the
    /// fan-out (BENCHMARKS.md, "CPU per delivery by publish rate").
    pub direct_writes: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            subscriber_buffer_bytes: 1 << 20,
            heartbeat: Some(Duration::from_secs(15)),
            max_commit_events: 4096,
            replay_page_events: 256,
            replay_page_bytes: 256 << 10,
            template_limits: crate::TemplateLimits::default(),
            template_budget_bytes: 64 << 20,
            template_max_count: 1000,
            direct_writes: false,
        }
    }
}

/// Counters, read by the metrics endpoint. Monotonic unless named as a gauge.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events stored and fanned out.
    pub published: AtomicU64,
    /// Events queued to subscribers (live), or written to their sockets directly.
    pub delivered: AtomicU64,
    /// Of `delivered`, the events the fan-out wrote straight to an idle subscriber's socket
    /// (the fast path, `HubConfig::direct_writes`) instead of queueing them.
    pub direct_writes: AtomicU64,
    /// Bytes queued to subscribers (live).
    pub delivered_bytes: AtomicU64,
    /// Subscriptions that replayed history.
    pub replays: AtomicU64,
    /// Events sent from history.
    pub replayed_events: AtomicU64,
    /// Bytes sent from history.
    pub replayed_bytes: AtomicU64,
    /// Replay pages read from the store (each at most `replay_page_bytes`, or one event).
    pub replay_pages: AtomicU64,
    /// Gap events sent.
    pub gaps: AtomicU64,
    /// Subscribers disconnected because their queue overflowed.
    pub slow_disconnects: AtomicU64,
    /// Open subscriptions (gauge).
    pub subscriptions: AtomicU64,
    /// Events delivered live only, never stored (Mercure's subscription events): this hub's,
    /// and over a store that relays them, the other hubs'.
    pub live_only: AtomicU64,
    /// Publish requests that failed in the store.
    pub store_errors: AtomicU64,
    /// Events stored with a publisher's own id (each is in the store's publisher-id index
    /// while retained).
    pub publisher_ids: AtomicU64,
    /// Subscriptions that started with a snapshot of their keys.
    pub snapshots: AtomicU64,
    /// Events sent in snapshots (also counted in `replayed_events`).
    pub snapshot_events: AtomicU64,
    /// Events stored with a key (tombstones included).
    pub keyed_events: AtomicU64,
}

impl Stats {
    /// Adds what one fan-out (stored or live-only events) did to the counters.
    fn count_fan_out(&self, totals: crate::registry::FanOut) {
        self.delivered
            .fetch_add(totals.deliveries, Ordering::Relaxed);
        self.delivered_bytes
            .fetch_add(totals.bytes, Ordering::Relaxed);
        self.slow_disconnects
            .fetch_add(totals.overflows, Ordering::Relaxed);
        self.direct_writes
            .fetch_add(totals.direct, Ordering::Relaxed);
    }
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// A cheap, cloneable handle to the hub.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
    commits: mpsc::Sender<Commit>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("log", &self.shared.store.log_id())
            .finish()
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    templates: crate::Templates,
    pub(crate) config: HubConfig,
    registry: Mutex<Registry>,
    pub(crate) stats: Stats,
    next_subscriber: AtomicU64,
    closing: AtomicBool,
    /// With a shared store: the last sequence number fanned out from its ordered feed.
    fed: Option<watch::Receiver<u64>>,
    /// With a shared store that relays live-only events: where this hub's go, and the
    /// relay's counters.
    relay: Option<(Arc<dyn LiveOutbox>, Arc<RelayStats>)>,
}

/// How long a publisher's answer waits, once its events are stored, for the ordered feed to
/// fan them out on this hub (a shared store only). Past it the publisher is answered anyway:
/// its events are stored, and they reach this hub's subscribers once the feed catches up.
const FEED_WAIT: Duration = Duration::from_secs(2);

struct Commit {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<EventId>, PublishError>>,
}

impl Hub {
    /// Starts a hub over `store`: spawns the commit task and the heartbeat task on the
    /// current tokio runtime. They stop when the last `Hub` handle is dropped.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: HubConfig) -> Hub {
        let last = store.bounds().last;
        let feed = store.ordered_feed(last);
        let (fed_tx, fed) = match feed {
            Some(_) => {
                let (tx, rx) = watch::channel(last);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let (relay, inbox) = match store.live_relay() {
            Some(relay) => (Some((relay.outbox, relay.stats)), Some(relay.inbox)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            templates: crate::Templates::new(
                config.template_limits,
                config.template_budget_bytes,
                config.template_max_count,
            ),
            store,
            config,
            registry: Mutex::new(Registry::new(last)),
            stats: Stats::default(),
            next_subscriber: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            fed,
            relay,
        });
        let (commits, rx) = mpsc::channel(1024);
        tokio::spawn(commit_loop(shared.clone(), rx));
        if let (Some(feed), Some(fed)) = (feed, fed_tx) {
            tokio::spawn(feed_loop(Arc::downgrade(&shared), feed, fed));
        }
        if let Some(inbox) = inbox {
            tokio::spawn(relay_loop(Arc::downgrade(&shared), inbox));
        }
        if let Some(every) = shared.config.heartbeat {
            tokio::spawn(heartbeat_loop(Arc::downgrade(&shared), every));
        }
        Hub { shared, commits }
    }

    /// Publishes `events` in order, and returns their ids once the store has them.
    ///
    /// # Errors
    ///
    /// [`PublishError::Store`] when the store fails (nothing of the batch is delivered), or
    /// [`PublishError::ShuttingDown`].
    pub async fn publish(&self, events: Vec<NewEvent>) -> Result<Vec<EventId>, PublishError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(Commit { events, reply })
            .await
            .map_err(|_| PublishError::ShuttingDown)?;
        answer.await.map_err(|_| PublishError::ShuttingDown)?
    }

    /// Delivers `events` at once to the live subscribers they match, without storing them:
    /// they get no id (so a client's `Last-Event-ID` does not move), no place in history and
    /// no replay. For announcements that anyone can cause at will, like Mercure's
    /// subscription events, which stored would let every anonymous connect write to durable
    /// history (and evict real events). Private events reach only subscribers with rights.
    ///
    /// Over a store that relays live-only events ([`Store::live_relay`]), they also go to the
    /// other hubs' subscribers, best effort, after this hub's (the relay never waits).
    pub fn publish_live(&self, events: &[NewEvent]) {
        self.shared.broadcast_live(events);
        if let Some((outbox, _)) = &self.shared.relay {
            outbox.send(events);
        }
    }

    /// Looks a resume point up in the store's publisher index: an [`Resume::After`] whose id
    /// is not a hub id (`<log>-<seq>`) but the publisher id of a retained event becomes
    /// [`Resume::Published`] at that event's position. Anything else is returned as it is (a
    /// publisher id the index does not hold stays `After`, an unknown id: the gap notice).
    /// Call it before [`subscribe`](Hub::subscribe): the index may be remote (a cluster's).
    ///
    /// No text resolves to two events: publisher ids may not have a hub id's shape
    /// ([`check_publisher_id`](crate::check_publisher_id)), and the index holds each at most
    /// once among retained events.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the index cannot be read.
    pub async fn resolve(&self, resume: Resume) -> Result<Resume, StoreError> {
        match resume {
            Resume::After(text) if EventId::parse(&text).is_none() => {
                Ok(match self.shared.store.find_id(&text).await? {
                    Some(seq) => Resume::Published { id: text, seq },
                    None => Resume::After(text),
                })
            }
            other => Ok(other),
        }
    }

    /// Subscribes to `selector`, starting at `resume`, with access to public events only.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::ShuttingDown`] once [`shutdown`](Hub::shutdown) was called.
    pub fn subscribe(
        &self,
        selector: Selector,
        resume: &Resume,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with_access(selector, resume, None)
    }

    /// Subscribes like [`subscribe`](Hub::subscribe); private events whose topics match
    /// `private_access` (the subscriber's rights) are delivered too, live and in replay.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::ShuttingDown`] once [`shutdown`](Hub::shutdown) was called.
    pub fn subscribe_with_access(
        &self,
        selector: Selector,
        resume: &Resume,
        private_access: Option<Selector>,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with_snapshot(selector, resume, private_access, false)
    }

    /// Subscribes like [`subscribe_with_access`](Hub::subscribe_with_access); with `snapshot`,
    /// a subscription that would not resume from a known position — no `Last-Event-ID`, or
    /// one that expired or is unknown (after its gap notice) — starts with the snapshot of its
    /// topics (the newest retained event of every key, in id order: the `key.rs` module doc)
    /// instead of nothing or the whole retained history, then goes live. The snapshot is read
    /// up to the position the live queue starts after, so nothing is missed or sent twice in
    /// between; a key whose newest event is past it arrives live. A resume from a known id
    /// (and `earliest`) is not changed.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::ShuttingDown`] once [`shutdown`](Hub::shutdown) was called.
    pub fn subscribe_with_snapshot(
        &self,
        selector: Selector,
        resume: &Resume,
        private_access: Option<Selector>,
        snapshot: bool,
    ) -> Result<Subscription, SubscribeError> {
        let shared = &self.shared;
        if shared.closing.load(Ordering::Acquire) {
            return Err(SubscribeError::ShuttingDown);
        }
        let selector = Arc::new(selector);
        let id = shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let (queue, live_after) = {
            let mut registry = shared.lock_registry();
            let queue = Arc::new(LiveQueue::with_access(
                id,
                shared.config.subscriber_buffer_bytes,
                registry.last_seq,
                private_access.map(Arc::new),
            ));
            registry.insert(&selector, &queue);
            (queue, registry.last_seq)
        };
        // The position the client names: a hub id of any log, or a publisher id that
        // `Hub::resolve` found in this log's index.
        let named = match resume {
            Resume::After(text) => EventId::parse(text),
            Resume::Published { seq, .. } => Some(EventId {
                log: shared.store.log_id(),
                seq: *seq,
            }),
            Resume::Live | Resume::Earliest => None,
        };
        let requested = resume.requested().unwrap_or_default();
        // Over a shared store, an id of this log may be ahead of the feed (see the module
        // doc): the subscription asks the store whether the log has given it. So may a
        // publisher id on any store: the index has it once it is stored, before it is fanned
        // out (a client that knew the id before its answer).
        let published = matches!(resume, Resume::Published { .. });
        let ahead = named
            .filter(|id| {
                (shared.fed.is_some() || published)
                    && id.log == shared.store.log_id()
                    && id.seq > live_after
            })
            .map(|id| id.seq);
        let retained_from = shared.store.retained_from(&selector);
        let oldest = (retained_from <= live_after).then(|| EventId {
            log: shared.store.log_id(),
            seq: retained_from,
        });
        let (replay_after, gap) = match resume {
            Resume::Live if snapshot => (0, None),
            Resume::Live => (live_after, None),
            Resume::Earliest => (0, None),
            Resume::After(_) | Resume::Published { .. } => match named {
                Some(id) if id.log == shared.store.log_id() && id.seq <= live_after => {
                    if id.seq + 1 < retained_from {
                        let gap = Gap::new(GapReason::Expired, requested, oldest);
                        (if snapshot { 0 } else { retained_from - 1 }, Some(gap))
                    } else {
                        (id.seq, None)
                    }
                }
                Some(_) if ahead.is_some() => (live_after, None),
                _ => (0, Some(Gap::new(GapReason::Unknown, requested, oldest))),
            },
        };
        if gap.is_some() {
            shared.stats.gaps.fetch_add(1, Ordering::Relaxed);
        }
        // Only a start that is not a resume from a known position reads the snapshot.
        let snapshot = snapshot && !matches!(resume, Resume::Earliest);
        if replay_after < live_after {
            let counter = if snapshot && replay_after == 0 {
                &shared.stats.snapshots
            } else {
                &shared.stats.replays
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let mut subscription = Subscription::new(
            shared.clone(),
            queue,
            selector,
            gap,
            replay_after,
            live_after,
            retained_from,
        );
        if snapshot {
            subscription.use_snapshot();
        }
        if let Some(seq) = ahead {
            subscription.check_ahead(seq, requested, live_after);
        }
        Ok(subscription)
    }

    /// Starts shutting down: new subscriptions are refused, and every open stream sends what
    /// is queued and ends, so its client reconnects (to this hub once restarted, or another).
    pub fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::Release);
        let registry = self.shared.lock_registry();
        for sub in registry.subscribers() {
            sub.close(CloseReason::Shutdown);
        }
    }

    /// The hub's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The counters of the relay of live-only events between hubs, when the store has one
    /// ([`Store::live_relay`]).
    pub fn relay_stats(&self) -> Option<&RelayStats> {
        self.shared.relay.as_ref().map(|(_, stats)| &**stats)
    }

    /// How many distinct topics and patterns have subscribers now.
    pub fn active_topics(&self) -> usize {
        self.shared.lock_registry().topic_count()
    }

    /// The hub's compiled URI templates: compile client selectors with
    /// [`Pattern::mercure_in`](crate::Pattern::mercure_in) and these, so each distinct
    /// template is compiled once and the hub's budget bounds them all.
    pub fn templates(&self) -> &crate::Templates {
        &self.shared.templates
    }

    /// The store behind the hub.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }
}

impl Shared {
    pub(crate) fn lock_registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn unsubscribe(&self, selector: &Selector, id: u64) {
        self.lock_registry().remove(selector, id);
    }

    /// Matches each of `topics` (one entry per event) against the registry's URI templates,
    /// without holding the registry lock while matching: the snapshot matched against, and
    /// per event the indexes of the templates that match (empty when there is none).
    /// Costs one more short lock per batch, and nothing else when no one subscribed with a
    /// template.
    fn match_templates<'a>(
        &self,
        topics: impl Iterator<Item = &'a [crate::Topic]>,
    ) -> (Arc<crate::registry::TemplateSnapshot>, Vec<Vec<u32>>) {
        let snapshot = self.lock_registry().template_snapshot();
        let matched = if snapshot.is_empty() {
            Vec::new()
        } else {
            topics.map(|t| snapshot.matching(t)).collect()
        };
        (snapshot, matched)
    }

    /// Delivers live-only `events` to this hub's subscribers: each encoded once, shared.
    fn broadcast_live(&self, events: &[NewEvent]) {
        let mut totals = crate::registry::FanOut::default();
        let (snapshot, matched) = self.match_templates(events.iter().map(|e| &e.topics[..]));
        {
            let registry = self.lock_registry();
            for (i, event) in events.iter().enumerate() {
                let wire = event.wire();
                let templates = matched.get(i).map_or(&[][..], Vec::as_slice);
                totals += registry.broadcast(event, &wire.encode(), &snapshot, templates);
            }
        }
        self.stats
            .live_only
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.stats.count_fan_out(totals);
    }

    fn fan_out(&self, events: &[Arc<StoredEvent>]) {
        let mut totals = crate::registry::FanOut::default();
        let (snapshot, matched) = self.match_templates(events.iter().map(|e| &e.event.topics[..]));
        {
            let mut registry = self.lock_registry();
            for (i, event) in events.iter().enumerate() {
                let templates = matched.get(i).map_or(&[][..], Vec::as_slice);
                totals += registry.fan_out(event, &snapshot, templates);
            }
        }
        self.stats
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.stats.count_fan_out(totals);
        if totals.overflows > 0 {
            tracing::debug!(count = totals.overflows, "disconnected slow subscribers");
        }
    }
}

/// The single writer: group commit, then fan-out, then answers.
async fn commit_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<Commit>) {
    let max = shared.config.max_commit_events.max(1);
    while let Some(first) = rx.recv().await {
        let mut count = first.events.len();
        let mut batch = vec![first];
        while count < max {
            match rx.try_recv() {
                Ok(commit) => {
                    count += commit.events.len();
                    batch.push(commit);
                }
                Err(_) => break,
            }
        }
        commit(&shared, batch).await;
    }
}

/// Appends the events of `batch` in one store append, fans them out and answers. A publisher
/// id already taken fails the whole append (the store's contract); then each request is
/// appended alone, in order, so that only the requests that reuse an id are refused (a
/// `/publish` batch is one request: it is refused whole).
async fn commit(shared: &Arc<Shared>, mut batch: Vec<Commit>) {
    let sizes: Vec<usize> = batch.iter().map(|c| c.events.len()).collect();
    let events: Vec<NewEvent> = batch
        .iter_mut()
        .flat_map(|c| std::mem::take(&mut c.events))
        .collect();
    // Kept only when a conflict could split the batch: the requests with publisher ids.
    let retry = (batch.len() > 1 && events.iter().any(|e| e.id.is_some())).then(|| events.clone());
    let appended = shared.store.append(events).await;
    if let Ok(stored) = &appended {
        let with_id = stored.iter().filter(|e| e.event.id.is_some()).count();
        shared
            .stats
            .publisher_ids
            .fetch_add(with_id as u64, Ordering::Relaxed);
        let keyed = stored.iter().filter(|e| e.event.key.is_some()).count();
        shared
            .stats
            .keyed_events
            .fetch_add(keyed as u64, Ordering::Relaxed);
    }
    match appended {
        Ok(stored) => match &shared.fed {
            None => {
                shared.fan_out(&stored);
                answer(batch, sizes, &stored);
            }
            Some(fed) => {
                // The feed fans them out; answer once it has, without holding up the
                // next group commit.
                let mut fed = fed.clone();
                let last = stored.last().map_or(0, |e| e.seq());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(FEED_WAIT, fed.wait_for(|&s| s >= last)).await;
                    answer(batch, sizes, &stored);
                });
            }
        },
        Err(StoreError::IdConflict(_)) if retry.is_some() => {
            let mut events = retry.unwrap_or_default().into_iter();
            for (mut alone, size) in batch.into_iter().zip(sizes) {
                alone.events = events.by_ref().take(size).collect();
                // One request: no retry, so no deeper recursion.
                Box::pin(commit(shared, vec![alone])).await;
            }
        }
        Err(error) => {
            if !matches!(error, StoreError::IdConflict(_)) {
                shared.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, requests = batch.len(), "the store refused a batch of events");
            }
            for commit in batch {
                let _ = commit.reply.send(Err(PublishError::Store(error.clone())));
            }
        }
    }
}

/// Answers each request of a committed batch with the ids of its events.
fn answer(batch: Vec<Commit>, sizes: Vec<usize>, stored: &[Arc<StoredEvent>]) {
    let mut ids = stored.iter().map(|e| e.id);
    for (commit, size) in batch.into_iter().zip(sizes) {
        // A publisher that gave up waiting is no error: its events are stored.
        let _ = commit.reply.send(Ok(ids.by_ref().take(size).collect()));
    }
}

/// Over a shared store: fans out every event of the log from its ordered feed, in order, and
/// tells the commit task how far it got. Ends with the feed or the last `Hub` handle.
///
/// A feed that skips events (the shared log's retention deleted them before this hub read
/// them) would have every live subscriber skip them silently. Their streams end instead
/// (`CloseReason::StoreFailed`), so that each client resumes from history, with the gap
/// notice (ARCHITECTURE.md, invariant 3).
async fn feed_loop(shared: Weak<Shared>, mut feed: OrderedFeed, fed: watch::Sender<u64>) {
    while let Some(batch) = feed.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            continue;
        };
        let before = *fed.borrow();
        if first.seq() > before + 1 {
            tracing::warn!(
                from = before + 1,
                to = first.seq() - 1,
                "the shared log lost events before this hub read them; ending live streams"
            );
            for sub in shared.lock_registry().subscribers() {
                sub.close(CloseReason::StoreFailed);
            }
        }
        shared.fan_out(&batch);
        fed.send_replace(last.seq());
    }
}

/// Over a store that relays live-only events: fans out the other hubs' to this hub's
/// subscribers, as [`Hub::publish_live`] does its own. Ends with the relay or the last `Hub`
/// handle.
async fn relay_loop(shared: Weak<Shared>, mut inbox: mpsc::Receiver<Vec<NewEvent>>) {
    while let Some(events) = inbox.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.broadcast_live(&events);
    }
}

/// Queues a keep-alive comment for idle subscribers, every `every`. One task for the whole
/// hub, not one timer per connection.
async fn heartbeat_loop(shared: Weak<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let frame = Bytes::from_static(ssehub_wire::KEEP_ALIVE);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.lock_registry().heartbeat(&frame);
    }
}
