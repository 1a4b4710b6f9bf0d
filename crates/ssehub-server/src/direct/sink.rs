//! A streaming response's socket as the hub's fan-out may write to it: the connection side of
//! the idle-writable fast path (the core's `DirectSink`).
//!
//! The core offers an event to [`SocketSink::try_send`] only while the connection's task
//! sleeps with everything it was handed written (the stream is parked), so the fan-out's
//! write comes in order. The event is framed as the writer frames a body chunk and sent in
//! one non-blocking system call from the fan-out's thread. When the socket takes only part
//! of it, the rest stays here: the writer writes it ([`SocketSink::poll_flush`]) before any
//! other byte, and until then every offer is refused (the core queues the event instead).
//! Once the response is over ([`SocketSink::close`]) the sink lets go of the socket and
//! refuses everything, so hyper can have the connection.
//!
//! The lock is the sink's own: taken by the fan-out under the subscriber's queue lock, and by
//! the connection's task under no other lock (ARCHITECTURE.md, "Lock order"). The rest of a
//! partial write is at most one event (or one batch of them, a heartbeat): what the fan-out
//! holds for a subscriber beyond its queue's byte bound is bounded by what one publish may
//! carry.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use ssehub_http::{DirectSink, Sent};
use tokio::net::TcpStream;

use super::{Framing, Pending};

/// One connection's socket, shared with the fan-out while its response streams.
#[derive(Debug)]
pub(super) struct SocketSink {
    framing: Framing,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` once the response is over.
    stream: Option<Arc<TcpStream>>,
    /// What the socket did not take of the last event the fan-out wrote.
    rest: Option<Box<Pending>>,
}

impl SocketSink {
    /// A sink for a body framed as `framing` (chunked, or until the connection closes).
    pub(super) fn new(stream: Arc<TcpStream>, framing: Framing) -> Self {
        SocketSink {
            framing,
            state: Mutex::new(State {
                stream: Some(stream),
                rest: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what the fan-out left of a partial write; `Ready` once nothing is left. The
    /// writer calls it before every chunk of its own.
    pub(super) fn poll_flush(
        &self,
        stream: &TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut state = self.lock();
        while let Some(rest) = &mut state.rest {
            ready!(rest.poll_write(stream, cx))?;
            if rest.is_done() {
                state.rest = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The response is over: the fan-out writes nothing more, and the socket is let go.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.stream = None;
        state.rest = None;
    }
}

impl DirectSink for SocketSink {
    fn try_send(&self, bytes: &Bytes) -> Sent {
        let mut state = self.lock();
        let state = &mut *state;
        let (Some(stream), None) = (&state.stream, &state.rest) else {
            return Sent::Nothing;
        };
        let mut pending = Pending::chunk(bytes.clone(), self.framing);
        match pending.try_write(stream) {
            Ok(()) if pending.is_done() => Sent::All,
            Ok(()) => {
                state.rest = Some(Box::new(pending));
                Sent::Part
            }
            // Would block, or failed: the connection's task finds out when it writes.
            Err(_) => Sent::Nothing,
        }
    }
}
