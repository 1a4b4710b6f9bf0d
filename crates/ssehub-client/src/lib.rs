//! A Rust `EventSource`: a [`Stream`] of server-sent events that follows
//! the WHATWG standard (§9.2) and never loses its place. It works with any SSE server.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use ssehub_client::{Event, EventSource};
//!
//! # async fn demo() {
//! let mut events = EventSource::builder("http://127.0.0.1:8080/topics/news").build();
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(Event::Message(m)) => println!("{} {}: {}", m.last_event_id, m.event_type, m.data),
//!         Ok(_) => {}
//!         Err(e) if e.is_fatal() => break,          // the stream ends after this
//!         Err(e) => eprintln!("reconnecting: {e}"), // it reconnects by itself
//!     }
//! }
//! # }
//! ```
//!
//! What the standard asks, and this client does: `Accept: text/event-stream` and
//! `Cache-Control: no-cache` on every request; `Last-Event-ID` on reconnect only when the last
//! event id is not empty, carried across any number of reconnects; `retry:` honoured (even from
//! a block that never completes); 204 stops it for good; any other status than 200, or a
//! content type other than `text/event-stream`, fails it; redirects are followed (a redirect to the
//! URL itself, what an empty `Location` gives, fails it); an event cut off by a disconnect is
//! discarded, and its id never used; a clean end of the body is reported as a non-fatal
//! [`Error::StreamEnded`] (the standard's `error` event) before the reconnect.
//!
//! What real clients also need: exponential backoff with jitter and a cap after failures
//! ([`Backoff`]); a read timeout that reconnects a stream gone silent (heartbeats count);
//! custom headers; POST and other methods with a body re-sent on every reconnect; an initial
//! last event id; comments on request; retrying 5xx and 429 on request (off by default, as in
//! the standard); and [`EventSource::close`] at any time.
//!
//! # Resumable POST streams
//!
//! [`Builder::resumable`] sends a request once (a POST of a prompt to an ssehub relay) and,
//! when its streamed answer is cut, resumes it from the relay's topic with `Last-Event-ID`
//! until the answer's `ssehub-end` event: every event once, in order. `ssehub sub --post`
//! uses it.
//!
//! # Publishing to an ssehub hub
//!
//! The other direction, for ssehub's own publish API: [`HubClient`] publishes events, and
//! [`LinePublisher`] publishes a stream of lines (a log file, a command's output) in order, in
//! batches, through a bounded buffer that rides out a hub that is down. `ssehub pub`, `tail`
//! and `exec` are built on them.
//!
//! # Layout
//!
//! - `lib.rs` — [`EventSource`], [`Builder`], [`Event`], [`Error`].
//! - `connection.rs` — the background task: connect, read, parse, reconnect.
//! - `backoff.rs` — [`Backoff`], a pure function of the failure count.
//! - `hub.rs` — [`HubClient`]: the hub's publish API.
//! - `line_publisher.rs` — [`LinePublisher`]: ordered, batched, bounded publishing of lines.
//! - `line_splitter.rs` — [`LineSplitter`]: a byte stream cut into lines.
//! - `resumable.rs` — [`ResumablePost`]: a POST's answer resumed through an ssehub relay.

mod backoff;
mod binary;
mod connection;
mod hub;
mod line_publisher;
mod line_splitter;
mod resumable;
#[cfg(feature = "tls")]
mod tls;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Notify, mpsc};

pub use backoff::Backoff;
pub use binary::{BINARY_SUFFIX, base_type, binary_data};
pub use hub::{HubClient, PublishError, PublishEvent, encode_topic_path};
pub use line_publisher::{LineOptions, LinePublisher, LineReport, Publish};
pub use line_splitter::{LineSplitter, MAX_LINE_BYTES};
pub use resumable::{END_EVENT, ResumablePost, TOPIC_HEADER};
pub use ssehub_wire::{Limits, MessageEvent, ParseError};
#[cfg(feature = "tls")]
pub use tls::TlsTrust;

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection was established (the `open` event); `url` is the final URL after
    /// redirects.
    Open {
        /// The URL that answered.
        url: String,
    },
    /// A dispatched event.
    Message(MessageEvent),
    /// A comment line (only with [`Builder::comments`]).
    Comment(String),
}

/// Why a connection failed. [`Error::is_fatal`] says whether the stream ends after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request or the body failed (refused, reset, DNS, …); the client reconnects. Fatal
    /// when a redirect cannot be followed (to the URL itself, as an empty `Location` is, or
    /// too many): trying again would only repeat it.
    #[error("connection failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server ended the response body cleanly; the client reconnects after the
    /// reconnection time (the standard's `error` event while reconnecting).
    #[error("the server ended the stream")]
    StreamEnded,
    /// No bytes for the read timeout; the client reconnects.
    #[error("no data for {0:?}; reconnecting")]
    ReadTimeout(Duration),
    /// The server answered with another status than 200. Fatal unless retrying server errors
    /// was asked for and this is a 5xx or 429.
    #[error("the server answered {status}")]
    Status {
        /// The status.
        status: reqwest::StatusCode,
        /// Whether the client gives up.
        fatal: bool,
    },
    /// The response is not `text/event-stream`. Fatal.
    #[error("the response is not an event stream (content type {0:?})")]
    ContentType(Option<String>),
    /// The stream broke a parser limit; that event was dropped and the stream goes on.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl Error {
    /// Whether the stream ends after this error.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Status { fatal, .. } => *fatal,
            Error::ContentType(_) => true,
            Error::Transport(e) => e.is_redirect(),
            Error::StreamEnded | Error::ReadTimeout(_) | Error::Parse(_) => false,
        }
    }
}

/// Configures an [`EventSource`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) url: String,
    pub(crate) method: reqwest::Method,
    pub(crate) body: Option<Bytes>,
    pub(crate) headers: HeaderMap,
    pub(crate) last_event_id: String,
    pub(crate) reconnection_time: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) retry_server_errors: bool,
    pub(crate) comments: bool,
    pub(crate) limits: Limits,
    pub(crate) client: Option<reqwest::Client>,
    #[cfg(feature = "tls")]
    pub(crate) tls: TlsTrust,
}

impl Builder {
    /// The HTTP method (GET by default).
    pub fn method(mut self, method: reqwest::Method) -> Self {
        self.method = method;
        self
    }

    /// A POST of `body`: [`method`](Builder::method) and [`body`](Builder::body) at once.
    pub fn post(self, body: impl Into<Bytes>) -> Self {
        self.method(reqwest::Method::POST).body(body)
    }

    /// A request body, sent again on every reconnect (for streams started by a POST).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds a request header (sent on every connection).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The last event id to start from, as if it had been received: sent as `Last-Event-ID` on
    /// the first request and reported by events until the server sends another.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time until the server sends `retry:` (3 s by default).
    pub fn reconnection_time(mut self, time: Duration) -> Self {
        self.reconnection_time = time;
        self
    }

    /// Backoff after failed attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reconnect when no byte at all arrives for this long (set it above the server's
    /// heartbeat interval). Off by default.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Treat 5xx and 429 answers as temporary and reconnect (with backoff) instead of failing,
    /// as resilience-oriented clients do. The standard fails them; 204 stays final either way.
    pub fn retry_server_errors(mut self, retry: bool) -> Self {
        self.retry_server_errors = retry;
        self
    }

    /// Also yield comment lines as [`Event::Comment`].
    pub fn comments(mut self, comments: bool) -> Self {
        self.comments = comments;
        self
    }

    /// Parser limits (16 MiB per line and per event by default).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The HTTP client to use (for proxies, TLS settings, cookies, …).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Which certificates an `https://` server may present (feature `tls`; the system's roots
    /// by default). Ignored when a [`client`](Builder::client) is given.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, trust: TlsTrust) -> Self {
        self.tls = trust;
        self
    }

    /// Starts connecting in the background.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn build(self) -> EventSource {
        let (tx, rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            last_event_id: Mutex::new(self.last_event_id.clone()),
            reconnect: Notify::new(),
        });
        let task = tokio::spawn(connection::run(self, tx, shared.clone()));
        EventSource {
            rx,
            task,
            shared,
            closed: false,
        }
    }
}

/// State shared between the stream and its background task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) last_event_id: Mutex<String>,
    pub(crate) reconnect: Notify,
}

/// A reconnecting event stream; see the [crate documentation](crate).
///
/// It ends (`None`) after a fatal error, after a 204, or once [`close`](EventSource::close)d.
/// Dropping it closes it and cancels any request in flight.
#[derive(Debug)]
pub struct EventSource {
    rx: mpsc::Receiver<Result<Event, Error>>,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    closed: bool,
}

impl EventSource {
    /// Starts configuring a stream from `url`.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder {
            url: url.into(),
            method: reqwest::Method::GET,
            body: None,
            headers: HeaderMap::new(),
            last_event_id: String::new(),
            reconnection_time: Duration::from_secs(3),
            backoff: Backoff::default(),
            read_timeout: None,
            retry_server_errors: false,
            comments: false,
            limits: Limits::default(),
            client: None,
            #[cfg(feature = "tls")]
            tls: TlsTrust::default(),
        }
    }

    /// The last event id string: what the next reconnect sends as `Last-Event-ID`.
    pub fn last_event_id(&self) -> String {
        self.shared
            .last_event_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Drops the current connection and reconnects now, without waiting for the reconnection
    /// time (resuming from the last event id).
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_one();
    }

    /// Closes the stream: the request in flight is cancelled and nothing more is yielded.
    pub fn close(&mut self) {
        self.closed = true;
        self.task.abort();
        self.rx.close();
    }
}

impl Stream for EventSource {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.closed {
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}
