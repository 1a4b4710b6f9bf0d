//! A subscription: the byte stream one connection sends — gap notice, replay, then live.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::hub::Shared;
use crate::id::EventId;
use crate::live_queue::{CloseReason, LiveQueue};
use crate::store::{BoxFuture, ReadPage, StoreError};
use crate::topic::Selector;

/// The event type of the in-band gap notice. Publishers may not use the `ssehub-` prefix.
pub const GAP_EVENT: &str = "ssehub-gap";

/// Why some history cannot be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GapReason {
    /// The id is from this log, but events after it were dropped by retention.
    Expired,
    /// The id is not from this log (a wiped or different hub, or not an ssehub id at all).
    Unknown,
}

/// The gap notice, sent before anything else when history cannot fill the gap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// Why.
    pub reason: GapReason,
    /// The id the client asked to resume after.
    pub requested: String,
    /// The oldest retained event's id, where the replay now starts; `null` when history is
    /// empty.
    pub oldest: Option<String>,
}

impl Gap {
    pub(crate) fn new(reason: GapReason, requested: &str, oldest: Option<EventId>) -> Self {
        Gap {
            reason,
            requested: requested.to_string(),
            oldest: oldest.map(|id| id.to_string()),
        }
    }

    /// The notice as an SSE event: type [`GAP_EVENT`], JSON data, and no `id:` (so the
    /// client's last event id only moves when a real event arrives).
    pub fn encode(&self) -> Bytes {
        let data = serde_json::to_string(self).expect("a Gap always serialises");
        ssehub_wire::Event::new(data)
            .with_event(GAP_EVENT)
            .expect("constant without line breaks")
            .encode()
    }
}

/// The replay still to do: events in `(after, until]`.
struct Replay {
    after: u64,
    until: u64,
    /// The store's `retained_from` for this selector when last looked at. Retention may run
    /// while a long replay pages through history; when it moves past the replay's position,
    /// the events in between are gone, and the subscriber is told with a gap notice instead
    /// of silently skipping them.
    retained_from: u64,
    read: Option<BoxFuture<'static, Result<ReadPage, StoreError>>>,
    /// Reads the snapshot of the keys instead of the history (a replay from the start of a
    /// subscription that asked for one).
    snapshot: bool,
}

/// A resume from an id past what the hub's feed has reached, until the store says whether
/// the log has given it (the hub's module doc, "Over a shared store").
struct Ahead {
    seq: u64,
    requested: String,
    /// Where the live queue starts: what is at or before it comes from history.
    live_after: u64,
    last_given: BoxFuture<'static, Result<u64, StoreError>>,
}

/// One subscriber's stream of SSE bytes: a [`Stream`] of ready-to-write chunks. Each chunk
/// holds every event that was ready, so the connection writes them in one go.
///
/// Dropping it unsubscribes.
pub struct Subscription {
    shared: Arc<Shared>,
    queue: Arc<LiveQueue>,
    selector: Arc<Selector>,
    gap: Option<Gap>,
    replay: Option<Replay>,
    ahead: Option<Ahead>,
    /// Whether a replay from the start reads the snapshot of the keys rather than the
    /// history: [`Hub::subscribe_with_snapshot`](crate::Hub::subscribe_with_snapshot).
    snapshot: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.queue.id)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        queue: Arc<LiveQueue>,
        selector: Arc<Selector>,
        gap: Option<Gap>,
        after: u64,
        until: u64,
        retained_from: u64,
    ) -> Self {
        shared.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        Subscription {
            shared,
            queue,
            selector,
            gap,
            replay: (after < until).then_some(Replay {
                after,
                until,
                retained_from,
                read: None,
                snapshot: false,
            }),
            ahead: None,
            snapshot: false,
        }
    }

    /// Asks for the snapshot instead of the history whenever the replay starts from the
    /// beginning (no resume point, or one that expired or is unknown).
    pub(crate) fn use_snapshot(&mut self) {
        self.snapshot = true;
        if let Some(replay) = &mut self.replay
            && replay.after == 0
        {
            replay.snapshot = true;
        }
    }

    /// Resumes after `seq` (from `requested`), an id of this log past `live_after`, once the
    /// store confirms the log has given it; else as from an unknown id.
    pub(crate) fn check_ahead(&mut self, seq: u64, requested: &str, live_after: u64) {
        let store = self.shared.store.clone();
        self.ahead = Some(Ahead {
            seq,
            requested: requested.to_string(),
            live_after,
            last_given: Box::pin(async move { store.last_given().await }),
        });
    }

    /// Polls the check of an id ahead of the feed; `Ready` once done.
    fn poll_ahead(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(ahead) = &mut self.ahead else {
            return Poll::Ready(());
        };
        let given = match ahead.last_given.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(given) => given,
        };
        let Some(ahead) = self.ahead.take() else {
            return Poll::Ready(());
        };
        match given {
            Ok(last) if ahead.seq > last => {
                // No hub gave this id: unknown, as on a hub of its own.
                let retained_from = self.shared.store.retained_from(&self.selector);
                let oldest = (retained_from <= ahead.live_after).then(|| EventId {
                    log: self.shared.store.log_id(),
                    seq: retained_from,
                });
                self.gap = Some(Gap::new(GapReason::Unknown, &ahead.requested, oldest));
                let stats = &self.shared.stats;
                stats.gaps.fetch_add(1, Ordering::Relaxed);
                if ahead.live_after > 0 {
                    stats.replays.fetch_add(1, Ordering::Relaxed);
                    self.replay = Some(Replay {
                        after: 0,
                        until: ahead.live_after,
                        retained_from,
                        read: None,
                        snapshot: self.snapshot,
                    });
                }
            }
            Ok(_) => self.queue.skip_through(ahead.seq),
            Err(error) => {
                // Cannot tell: take it for given (a forged id then waits for the log).
                tracing::debug!(%error, "cannot ask the store how far its log goes");
                self.queue.skip_through(ahead.seq);
            }
        }
        Poll::Ready(())
    }

    /// The gap notice this subscription starts with, if any. (Over a shared store, one for an
    /// id past its log is only known once the stream is polled.)
    pub fn gap(&self) -> Option<&Gap> {
        self.gap.as_ref()
    }

    /// The handle through which the connection layer installs its socket for the fast path
    /// (`direct.rs`), when the hub's `direct_writes` is on. Only a connection that writes
    /// this stream's chunks itself, in order, and writes a sink's kept rest before the next
    /// chunk, may install one.
    pub fn direct_handle(&self) -> Option<crate::DirectHandle> {
        self.shared
            .config
            .direct_writes
            .then(|| crate::DirectHandle {
                queue: self.queue.clone(),
            })
    }

    /// Why the stream ended (or is ending), if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.closed()
    }

    /// Polls the replay; `Ready(None)` when it is over (or failed: the stream then ends).
    fn poll_replay(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        while let Some(replay) = &mut self.replay {
            if replay.after >= replay.until {
                self.replay = None;
                break;
            }
            if self.queue.closed().is_some() {
                // Overflowed (or shutting down) during replay: end now, the client resumes.
                self.replay = None;
                break;
            }
            let read = replay.read.get_or_insert_with(|| {
                let store = self.shared.store.clone();
                let (after, until) = (replay.after, replay.until);
                let selector = self.selector.clone();
                let limit = self.shared.config.replay_page_events.max(1);
                let max_bytes = self.shared.config.replay_page_bytes;
                if replay.snapshot {
                    Box::pin(async move {
                        store
                            .snapshot(after, until, selector, limit, max_bytes)
                            .await
                    })
                } else {
                    Box::pin(
                        async move { store.read(after, until, selector, limit, max_bytes).await },
                    )
                }
            });
            match read.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(page)) => {
                    replay.read = None;
                    let before = replay.after;
                    replay.after = page.scanned_to.max(replay.after + 1);
                    if let Some(last) = page.events.last() {
                        replay.after = replay.after.max(last.seq());
                    }
                    // Stores announce a retention floor before deleting below it
                    // (ARCHITECTURE.md, invariant 8), so a floor still at or below
                    // `before + 1` now proves the page was complete.
                    // Otherwise the deletion may have raced the read: report the gap where it
                    // is — after the page's events below the floor (read before they went;
                    // still real and in order), before those at or above it — and go on from
                    // the floor.
                    // A snapshot is the newest *retained* value of each key: one that
                    // retention took meanwhile is simply not in it, no gap.
                    let floor = self.shared.store.retained_from(&self.selector);
                    let mut gap_at = None;
                    if floor > replay.retained_from && !replay.snapshot {
                        replay.retained_from = floor;
                        if floor > before + 1 {
                            let at = |seq| EventId {
                                log: self.shared.store.log_id(),
                                seq,
                            };
                            let oldest =
                                (floor <= self.shared.store.bounds().last).then(|| at(floor));
                            self.gap = Some(Gap::new(
                                GapReason::Expired,
                                &at(before).to_string(),
                                oldest,
                            ));
                            self.shared.stats.gaps.fetch_add(1, Ordering::Relaxed);
                            replay.after = replay.after.max(floor - 1);
                            gap_at = Some(floor);
                        }
                    }
                    let mut events = page.events;
                    events.retain(|e| self.queue.may_see(&e.event));
                    if !events.is_empty() {
                        let stats = &self.shared.stats;
                        stats
                            .replayed_events
                            .fetch_add(events.len() as u64, Ordering::Relaxed);
                        let len = events.iter().map(|e| e.encoded.len()).sum::<usize>();
                        stats.replay_pages.fetch_add(1, Ordering::Relaxed);
                        if replay.snapshot {
                            stats
                                .snapshot_events
                                .fetch_add(events.len() as u64, Ordering::Relaxed);
                        }
                        stats
                            .replayed_bytes
                            .fetch_add(len as u64, Ordering::Relaxed);
                        let gap = gap_at.and_then(|floor| {
                            let notice = self.gap.take()?.encode();
                            Some((events.partition_point(|e| e.seq() < floor), notice))
                        });
                        if let ([event], None) = (&events[..], &gap) {
                            // One (maybe large) event: shared, not copied.
                            return Poll::Ready(Some(event.encoded.clone()));
                        }
                        let extra = gap.as_ref().map_or(0, |(_, notice)| notice.len());
                        let mut out = BytesMut::with_capacity(len + extra);
                        for (i, event) in events.iter().enumerate() {
                            if let Some((at, notice)) = &gap
                                && *at == i
                            {
                                out.extend_from_slice(notice);
                            }
                            out.extend_from_slice(&event.encoded);
                        }
                        if let Some((at, notice)) = &gap
                            && *at == events.len()
                        {
                            out.extend_from_slice(notice);
                        }
                        return Poll::Ready(Some(out.freeze()));
                    }
                    if let Some(gap) = self.gap.take() {
                        return Poll::Ready(Some(gap.encode()));
                    }
                }
                Poll::Ready(Err(error)) => {
                    tracing::warn!(%error, "cannot read history for a subscriber; closing it");
                    self.replay = None;
                    self.queue.close(CloseReason::StoreFailed);
                    return Poll::Ready(None);
                }
            }
        }
        Poll::Ready(None)
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.poll_ahead(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(gap) = this.gap.take() {
            return Poll::Ready(Some(gap.encode()));
        }
        if this.replay.is_some() {
            match this.poll_replay(cx) {
                Poll::Ready(None) if this.queue.closed() == Some(CloseReason::StoreFailed) => {
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => {}
                other => return other,
            }
        }
        // An overflowed queue was emptied when it overflowed, so this ends the stream at once.
        this.queue.poll_take(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.unsubscribe(&self.selector, self.queue.id);
        self.shared
            .stats
            .subscriptions
            .fetch_sub(1, Ordering::Relaxed);
    }
}
