//! One subscriber's live queue: bounded in bytes, filled by fan-out without ever waiting.
//!
//! Fan-out pushes shared [`Bytes`] (the event encoded once) into each matching subscriber's
//! queue under a short lock and wakes the connection's task. It never waits for a socket: when
//! a queue would pass its byte bound the subscriber is closed instead (ARCHITECTURE.md,
//! invariant 4), its connection ends, and the client resumes from history with its
//! `Last-Event-ID`.
//!
//! While the connection's task sleeps with nothing queued (the stream is *parked*), a push may
//! go straight to the connection's socket through its [`DirectSink`] instead (`direct.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::direct::{DirectSink, Sent};

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
    /// The connection's socket, for the fast path (`direct.rs`), once installed.
    sink: Option<Arc<dyn DirectSink>>,
    /// The connection's task sleeps in [`LiveQueue::poll_take`] with nothing handed over
    /// since: everything before is on its way, so the next push may go to `sink`. Cleared by
    /// every wake-up and at every `poll_take`.
    parked: bool,
}

/// What [`LiveQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Written to the connection's socket by the fan-out (all of it, or part of it with the
    /// rest kept by the sink): the fast path.
    Sent,
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
            if let Some(sent) = try_direct(&mut inner, bytes) {
                return sent;
            }
            inner.heartbeat = Some(bytes.clone());
            wake(&mut inner);
            return Pushed::Queued;
        }
        let pushed = match try_direct(&mut inner, bytes) {
            Some(sent) => sent,
            None => self.enqueue(&mut inner, seq, bytes),
        };
        if pushed != Pushed::Overflowed {
            inner.last_seq = seq;
        }
        pushed
    }

    /// Gives the queue its connection's socket, for the fast path (`direct.rs`).
    pub(crate) fn install_sink(&self, sink: Arc<dyn DirectSink>) {
        self.lock().sink = Some(sink);
    }

    /// Queues an event that has no place in the log (no id, never stored: delivered live
    /// only), under the same byte bound as the others.
    pub(crate) fn push_unsequenced(&self, bytes: &Bytes) -> Pushed {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Pushed::Skipped;
        }
        match try_direct(&mut inner, bytes) {
            Some(sent) => sent,
            None => self.enqueue(&mut inner, 0, bytes),
        }
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
    ///
    /// Returning `Pending` parks the stream (when a sink is installed): the caller promises
    /// that all it was handed before is written or being written ahead of anything else, so
    /// the fan-out may write the next event itself.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut inner = self.lock();
        inner.parked = false;
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
        inner.parked = inner.sink.is_some();
        Poll::Pending
    }
}

/// The fast path: when the stream is parked and nothing is waiting in the queue, offers
/// `bytes` to the sink. `None` when they must be queued. The sink makes one non-blocking
/// system call under this queue's lock (and the registry's: ARCHITECTURE.md, "Lock order").
fn try_direct(inner: &mut Inner, bytes: &Bytes) -> Option<Pushed> {
    if !inner.parked || !inner.items.is_empty() || inner.heartbeat.is_some() {
        return None;
    }
    let sink = inner.sink.as_ref()?;
    match sink.try_send(bytes) {
        Sent::All => Some(Pushed::Sent),
        Sent::Part => {
            // The connection writes the rest before anything else: wake it, and queue
            // whatever comes meanwhile.
            wake(inner);
            Some(Pushed::Sent)
        }
        Sent::Nothing => {
            inner.parked = false;
            None
        }
    }
}

fn wake(inner: &mut Inner) {
    inner.parked = false;
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

    /// A sink that answers as told and records what it took.
    #[derive(Debug, Default)]
    struct Script {
        answers: Mutex<VecDeque<Sent>>,
        took: Mutex<Vec<Bytes>>,
    }

    impl DirectSink for Script {
        fn try_send(&self, bytes: &Bytes) -> Sent {
            let sent = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Sent::Nothing);
            if sent != Sent::Nothing {
                self.took.lock().unwrap().push(bytes.clone());
            }
            sent
        }
    }

    fn scripted(answers: &[Sent]) -> (LiveQueue, Arc<Script>) {
        let q = LiveQueue::new(1, 1024, 0);
        let sink = Arc::new(Script::default());
        sink.answers.lock().unwrap().extend(answers);
        q.install_sink(sink.clone());
        (q, sink)
    }

    #[test]
    fn direct_only_while_parked() {
        let (q, sink) = scripted(&[Sent::All, Sent::All, Sent::All]);
        // Never polled yet (a replay may still be running): queued.
        assert_eq!(q.push(1, &Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"a"))));
        assert_eq!(take(&q), Poll::Pending);
        // Parked: straight to the sink, nothing queued, sequence still tracked.
        assert_eq!(q.push(2, &Bytes::from_static(b"b")), Pushed::Sent);
        assert_eq!(q.push(2, &Bytes::from_static(b"b")), Pushed::Skipped);
        assert_eq!(q.push(0, &Bytes::from_static(b":\n\n")), Pushed::Sent);
        assert_eq!(take(&q), Poll::Pending);
        assert_eq!(sink.took.lock().unwrap().len(), 2);
        // A close unparks: nothing goes to the sink after it.
        q.close(CloseReason::Shutdown);
        assert_eq!(q.push(3, &Bytes::from_static(b"c")), Pushed::Skipped);
        assert_eq!(take(&q), Poll::Ready(None));
    }

    #[test]
    fn refused_or_partial_writes_fall_back_to_the_queue() {
        let (q, sink) = scripted(&[Sent::Nothing, Sent::Part, Sent::All]);
        assert_eq!(take(&q), Poll::Pending);
        // Refused: queued, and the stream is no longer parked.
        assert_eq!(q.push(1, &Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(q.push(2, &Bytes::from_static(b"b")), Pushed::Queued);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"ab"))));
        assert_eq!(take(&q), Poll::Pending);
        // Part of it written: the next event waits in the queue for the connection.
        assert_eq!(q.push(3, &Bytes::from_static(b"c")), Pushed::Sent);
        assert_eq!(q.push(4, &Bytes::from_static(b"d")), Pushed::Queued);
        assert_eq!(take(&q), Poll::Ready(Some(Bytes::from_static(b"d"))));
        assert_eq!(take(&q), Poll::Pending);
        assert_eq!(q.push(5, &Bytes::from_static(b"e")), Pushed::Sent);
        let took: Vec<Bytes> = sink.took.lock().unwrap().clone();
        assert_eq!(took, [Bytes::from_static(b"c"), Bytes::from_static(b"e")]);
    }
}
