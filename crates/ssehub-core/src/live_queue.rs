//! One subscriber's live queue: bounded in bytes, filled by fan-out without ever waiting.
//!
//! Fan-out pushes shared [`Bytes`] (the event encoded once) into each matching subscriber's
//! queue under a short lock and wakes the connection's task. It never waits for a socket: when
//! a queue would pass its byte bound the subscriber is closed instead (ARCHITECTURE.md,
//! invariant 4), its connection ends, and the client resumes from history with its
//! `Last-Event-ID`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

/// Why a subscriber's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue passed the byte bound: the client reads too slowly.
    Overflow,
    /// The hub is shutting down.
    Shutdown,
    /// History could not be read.
    StoreFailed,
}

/// The queue between fan-out and one connection.
#[derive(Debug)]
pub(crate) struct LiveQueue {
    pub(crate) id: u64,
    max_bytes: usize,
    /// The topics whose private events this subscriber may receive (its token's rights).
    private_access: Option<std::sync::Arc<crate::topic::Selector>>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Queued chunks and their sequence numbers (0 for events with none).
    items: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The highest sequence number queued: later duplicates (an event matching two of the
    /// subscriber's patterns) and anything older are skipped, which keeps invariant 1
    /// (ARCHITECTURE.md) local.
    last_seq: u64,
    closed: Option<CloseReason>,
    waker: Option<Waker>,
    /// A heartbeat to send, kept apart from `items` so that a connection that only ever gets
    /// heartbeats never allocates a queue (what an idle connection costs is measured: see
    /// BENCHMARKS.md, "Idle connections").
    heartbeat: Option<Bytes>,
}

/// What [`LiveQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// A duplicate, or the queue is already closed.
    Skipped,
    /// The queue overflowed and is now closed.
    Overflowed,
}

impl LiveQueue {
    #[cfg(test)]
    pub(crate) fn new(id: u64, max_bytes: usize, live_after: u64) -> Self {
        LiveQueue::with_access(id, max_bytes, live_after, None)
    }

    pub(crate) fn with_access(
        id: u64,
        max_bytes: usize,
        live_after: u64,
        private_access: Option<std::sync::Arc<crate::topic::Selector>>,
    ) -> Self {
        LiveQueue {
            id,
            max_bytes,
            private_access,
            inner: Mutex::new(Inner {
                last_seq: live_after,
                ..Inner::default()
            }),
        }
    }

    /// Whether this subscriber may receive `event` (public, or private with matching rights).
    pub(crate) fn may_see(&self, event: &crate::NewEvent) -> bool {
        !event.private
            || self
                .private_access
                .as_ref()
                .is_some_and(|rights| rights.matches_any(&event.topics))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event (`seq > 0`) or a heartbeat (`seq == 0`) without waiting.
    pub(crate) fn push(&self, seq: u64, bytes: &Bytes) -> Pushed {
        let mut inner = self.lock();
        if inner.closed.is_some() || (seq != 0 && seq <= inner.last_seq) {
            return Pushed::Skipped;
        }
        if seq == 0 {
            if !inner.items.is_empty() || inner.heartbeat.is_some() {
                // Data (or a heartbeat) is already on its way; another would add nothing.
                return Pushed::Skipped;
            }
            inner.heartbeat = Some(bytes.clone());
            wake(&mut inner);
            return Pushed::Queued;
        }
        let pushed = self.enqueue(&mut inner, seq, bytes);
        if pushed == Pushed::Queued {
            inner.last_seq = seq;
        }
        pushed
    }

    /// Queues an event that has no place in the log (no id, never stored: delivered live
    /// only), under the same byte bound as the others.
    pub(crate) fn push_unsequenced(&self, bytes: &Bytes) -> Pushed {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Pushed::Skipped;
        }
        self.enqueue(&mut inner, 0, bytes)
    }

    /// Drops the queued events up to `seq` and skips those that come later, as if the queue
    /// had started after `seq` (for a resume from an id the feed had not reached when the
    /// queue was made: the client has them).
    pub(crate) fn skip_through(&self, seq: u64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.items.retain(|(s, bytes)| {
            let keep = *s == 0 || *s > seq;
            if !keep {
                inner.bytes -= bytes.len();
            }
            keep
        });
        inner.last_seq = inner.last_seq.max(seq);
    }

    /// Queues `bytes`, or closes the queue when they would pass its bound.
    fn enqueue(&self, inner: &mut Inner, seq: u64, bytes: &Bytes) -> Pushed {
        if inner.bytes + bytes.len() > self.max_bytes {
            inner.items.clear();
            inner.heartbeat = None;
            inner.bytes = 0;
            inner.closed = Some(CloseReason::Overflow);
            wake(inner);
            return Pushed::Overflowed;
        }
        inner.bytes += bytes.len();
        inner.items.push_back((seq, bytes.clone()));
        wake(inner);
        Pushed::Queued
    }

    /// Closes the queue: the connection sends what is queued (unless it overflowed) and ends.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(reason);
        }
        wake(&mut inner);
    }

    pub(crate) fn closed(&self) -> Option<CloseReason> {
        self.lock().closed
    }

    /// Takes everything queued as one buffer, so a connection writes all ready events in one
    /// write. `Ready(None)` once closed and drained.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut inner = self.lock();
        match inner.items.len() {
            0 => {
                if let Some(frame) = inner.heartbeat.take()
                    && inner.closed.is_none()
                {
                    return Poll::Ready(Some(frame));
                }
            }
            1 => {
                // Data goes out: no heartbeat needed.
                inner.heartbeat = None;
                inner.bytes = 0;
                return Poll::Ready(inner.items.pop_front().map(|(_, bytes)| bytes));
            }
            _ => {
                inner.heartbeat = None;
                let mut out = BytesMut::with_capacity(inner.bytes);
                for (_, item) in inner.items.drain(..) {
                    out.extend_from_slice(&item);
                }
                inner.bytes = 0;
                return Poll::Ready(Some(out.freeze()));
            }
        }
        if inner.closed.is_some() {
            return Poll::Ready(None);
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn wake(inner: &mut Inner) {
    if let Some(waker) = inner.waker.take() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn take(q: &LiveQueue) -> Poll<Option<Bytes>> {
        q.poll_take(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn batches_ready_items_into_one_buffer() {
        let q = LiveQueue::new(1, 1024, 0);
        assert_eq!(q.push(1, &Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(q.push(2, &Bytes::from_static(b"b")), Pushed::Queued);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"ab"))));
        assert_eq!(take(&q), Poll::Pending);
    }

    #[test]
    fn skips_duplicates_and_old_events() {
        let q = LiveQueue::new(1, 1024, 5);
        assert_eq!(q.push(5, &Bytes::from_static(b"old")), Pushed::Skipped);
        assert_eq!(q.push(6, &Bytes::from_static(b"x")), Pushed::Queued);
        assert_eq!(q.push(6, &Bytes::from_static(b"x")), Pushed::Skipped);
    }

    #[test]
    fn overflow_closes_at_once() {
        let q = LiveQueue::new(1, 4, 0);
        assert_eq!(q.push(1, &Bytes::from_static(b"abc")), Pushed::Queued);
        assert_eq!(q.push(2, &Bytes::from_static(b"de")), Pushed::Overflowed);
        assert_eq!(q.closed(), Some(CloseReason::Overflow));
        assert_eq!(take(&q), Poll::Ready(None), "nothing more is sent");
        assert_eq!(q.push(3, &Bytes::from_static(b"f")), Pushed::Skipped);
    }

    #[test]
    fn shutdown_drains_then_ends() {
        let q = LiveQueue::new(1, 64, 0);
        q.push(1, &Bytes::from_static(b"a"));
        q.close(CloseReason::Shutdown);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"a"))));
        assert_eq!(take(&q), Poll::Ready(None));
    }

    #[test]
    fn heartbeat_only_when_idle() {
        let q = LiveQueue::new(1, 64, 0);
        let hb = Bytes::from_static(b":\n\n");
        assert_eq!(q.push(0, &hb), Pushed::Queued);
        assert_eq!(q.push(0, &hb), Pushed::Skipped);
        assert_eq!(take(&q), Poll::Ready(Some(hb.clone())));
        assert_eq!(take(&q), Poll::Pending);
        // A heartbeat waiting when data comes is dropped: the data goes out instead.
        assert_eq!(q.push(0, &hb), Pushed::Queued);
        assert_eq!(q.push(1, &Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(q.push(0, &hb), Pushed::Skipped);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"a"))));
        assert_eq!(take(&q), Poll::Pending);
    }
}
