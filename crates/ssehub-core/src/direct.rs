//! The idle-writable fast path: fan-out writes an event straight to a parked connection.
//!
//! Through the queue, each event a subscriber gets costs a push under the queue's lock, a
//! wake-up of the connection's task (a futex and a run-queue entry on another worker), a poll
//! of the subscription stream and a poll of the response writer before the one system call
//! that sends it. Most subscribers are idle when an event comes: their task waits for the
//! next one with nothing queued and a socket that would take the bytes at once. For them the
//! fan-out makes that system call itself, and the connection's task is not woken at all.
//!
//! The core knows no sockets: the connection layer implements [`DirectSink`] (one
//! non-blocking write with its own framing) and installs it on the subscription through a
//! [`DirectHandle`]. The core decides when the sink may be used — only while the stream is
//! *parked*: `LiveQueue::poll_take` found nothing to hand over, so gap notice, replay and
//! every earlier chunk are behind it, and nothing was queued since — and the sink may still
//! refuse. Anything that does not fit goes through the queue as before:
//!
//! - [`Sent::Nothing`] (the socket would block, failed, or the sink is closed or busy): the
//!   event is queued and the task woken, as without a sink.
//! - [`Sent::Part`]: the socket took part of it. The sink keeps the rest, and the connection
//!   writes it before any other byte (and the sink refuses every event until then); the core
//!   wakes the task and queues what comes next.
//!
//! The queue's lock is held across the sink's call, so a push and the task's `poll_take`
//! never cross: an event either goes to the socket while the stream is parked, or is queued
//! and taken in order. The call is one non-blocking system call (ARCHITECTURE.md, "Lock
//! order").

use std::sync::Arc;

use bytes::Bytes;

use crate::live_queue::LiveQueue;

/// What [`DirectSink::try_send`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// All of it is on the socket.
    All,
    /// Some of it is on the socket; the sink keeps the rest, to be written by the connection
    /// before anything else.
    Part,
    /// None of it: the event goes through the queue.
    Nothing,
}

/// A connection's socket, as the fan-out may write to it while the connection's task sleeps.
pub trait DirectSink: Send + Sync + std::fmt::Debug {
    /// Writes `bytes` (one or more whole SSE events, or a heartbeat) with the connection's
    /// framing, without waiting: one non-blocking system call at most. Called under the
    /// subscriber's queue lock (and the registry's), only while the stream is parked; never
    /// writes while it keeps the rest of an earlier [`Sent::Part`].
    fn try_send(&self, bytes: &Bytes) -> Sent;
}

/// Lets the connection layer give a subscription its [`DirectSink`]. Handed out by
/// [`Subscription::direct_handle`](crate::Subscription::direct_handle) (the HTTP layer puts it
/// in the response's extensions); holds the subscriber's queue, so it should be dropped once
/// used.
#[derive(Debug, Clone)]
pub struct DirectHandle {
    pub(crate) queue: Arc<LiveQueue>,
}

impl DirectHandle {
    /// From now on, while the stream is parked, the fan-out may write to `sink` instead of
    /// queueing. The sink stays until the subscription ends: a sink whose connection is done
    /// must answer [`Sent::Nothing`].
    pub fn install(self, sink: Arc<dyn DirectSink>) {
        self.queue.install_sink(sink);
    }
}
