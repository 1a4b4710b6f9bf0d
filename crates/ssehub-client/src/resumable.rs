//! [`ResumablePost`]: a POST whose event-stream answer survives a cut, through an ssehub relay.
//!
//! An ssehub relay stores each streamed answer in a topic and names it in the response header
//! `SSEHub-Topic`; its last event has the type `ssehub-end`. So: POST once (never again: the
//! upstream would answer, and bill, a second time), read the answer, and when the connection
//! is cut before `ssehub-end`, resume with `GET /topics/<topic>` and `Last-Event-ID` (an
//! [`EventSource`], which goes on resuming after further cuts) until `ssehub-end`.
//!
//! An answer without `SSEHub-Topic` (a server that is not a relay) is read to its end, and the
//! stream then ends (after the error, if it was cut): it cannot be resumed.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use ssehub_wire::{Frame, Parser};
use tokio::sync::mpsc;

use crate::{Builder, Error, Event, EventSource};

/// The response header that names a relayed answer's topic.
pub const TOPIC_HEADER: &str = "ssehub-topic";
/// The type of a relayed answer's last event; its data is JSON with a `reason` (`done` when
/// the upstream ended the answer itself).
pub const END_EVENT: &str = "ssehub-end";

/// A POST's event stream that resumes after a cut through an ssehub relay (made by
/// [`Builder::resumable`]). Yields the answer's events, the `ssehub-end` one last, then ends. Non-fatal errors (a cut, a failed
/// resume attempt) are reported as they happen; the stream goes on after them.
#[derive(Debug)]
pub struct ResumablePost {
    rx: mpsc::Receiver<Result<Event, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Builder {
    /// Sends the request once (a POST with [`body`](Builder::body), usually) and resumes its
    /// answer through the relay's topic after a cut, instead of sending it again.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn resumable(self) -> ResumablePost {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(self, tx));
        ResumablePost { rx, task }
    }
}

impl Stream for ResumablePost {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ResumablePost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the first answer ended.
enum First {
    /// With `ssehub-end`, or with a fatal error: nothing more to do.
    Over,
    /// Cut; resume from the relay topic after this id (empty: before the first event).
    Cut {
        topic: String,
        last_event_id: String,
    },
}

async fn run(builder: Builder, tx: mpsc::Sender<Result<Event, Error>>) {
    let resume = match post(&builder, &tx).await {
        First::Over => return,
        First::Cut {
            topic,
            last_event_id,
        } => (topic, last_event_id),
    };
    let Ok(base) = reqwest::Url::parse(&builder.url) else {
        return;
    };
    let Ok(url) = base.join(&format!("/topics/{}", resume.0)) else {
        return;
    };
    let from = if resume.1.is_empty() {
        "earliest".to_string()
    } else {
        resume.1
    };
    let mut events = EventSource::builder(url.as_str())
        .last_event_id(from)
        .reconnection_time(builder.reconnection_time)
        .backoff(builder.backoff)
        .retry_server_errors(true)
        .limits(builder.limits)
        .comments(builder.comments);
    events.headers = builder.headers.clone();
    events.read_timeout = builder.read_timeout;
    events.client = builder.client.clone();
    let mut events = events.build();
    while let Some(item) = events.next().await {
        let end = matches!(&item, Ok(Event::Message(m)) if m.event_type == END_EVENT);
        let fatal = matches!(&item, Err(e) if e.is_fatal());
        if tx.send(item).await.is_err() || end || fatal {
            break;
        }
    }
    events.close();
}

/// Sends the request and reads its answer until `ssehub-end` or a cut.
async fn post(builder: &Builder, tx: &mpsc::Sender<Result<Event, Error>>) -> First {
    let client = builder.client.clone().unwrap_or_default();
    let mut request = client
        .request(builder.method.clone(), &builder.url)
        .headers(builder.headers.clone())
        .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
    if let Some(body) = &builder.body {
        request = request.body(body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            // Nothing was answered: the request may be sent again later by the caller, not
            // here (it may have reached the upstream).
            let _ = tx.send(Err(Error::Transport(e))).await;
            return First::Over;
        }
    };
    if response.status() != reqwest::StatusCode::OK {
        let status = response.status();
        let _ = tx
            .send(Err(Error::Status {
                status,
                fatal: true,
            }))
            .await;
        return First::Over;
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("text/event-stream"))
    {
        let _ = tx.send(Err(Error::ContentType(content_type))).await;
        return First::Over;
    }
    let topic = response
        .headers()
        .get(TOPIC_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = tx
        .send(Ok(Event::Open {
            url: response.url().to_string(),
        }))
        .await;
    let mut parser = Parser::with_limits(builder.limits).with_comments(builder.comments);
    let mut body = response.bytes_stream();
    // The id of the last event dispatched: one cut off mid-way never counts.
    let mut last_event_id = String::new();
    let cut = loop {
        let next = match builder.read_timeout {
            Some(limit) => match tokio::time::timeout(limit, body.next()).await {
                Ok(next) => next,
                Err(_) => break Error::ReadTimeout(limit),
            },
            None => body.next().await,
        };
        let chunk = match next {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => break Error::Transport(e),
            None => break Error::StreamEnded,
        };
        for frame in parser.feed_iter(&chunk) {
            let item = match frame {
                Ok(Frame::Event(m)) => {
                    let end = m.event_type == END_EVENT;
                    last_event_id.clone_from(&m.last_event_id);
                    if tx.send(Ok(Event::Message(m))).await.is_err() || end {
                        return First::Over;
                    }
                    continue;
                }
                Ok(Frame::Comment(c)) => Ok(Event::Comment(c)),
                Err(e) => Err(Error::Parse(e)),
            };
            if tx.send(item).await.is_err() {
                return First::Over;
            }
        }
    };
    match topic {
        Some(topic) => {
            let _ = tx.send(Err(cut)).await;
            First::Cut {
                topic,
                last_event_id,
            }
        }
        None => {
            if !matches!(cut, Error::StreamEnded) {
                let _ = tx.send(Err(cut)).await;
            }
            First::Over
        }
    }
}
