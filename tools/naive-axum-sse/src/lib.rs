//! A naive SSE hub, kept as a peer for ssehub's fan-out comparison (`scripts/bench/compare`).
//!
//! `GET /topics/{*topic}` streams `axum::response::Sse` from a `tokio::sync::broadcast`
//! channel per topic; `POST /topics/{*topic}` publishes the body and answers `{"id":"<n>"}`.
//! It is what a first implementation typically looks like: no history, no resume, and a
//! subscriber that falls more than [`CHANNEL_CAPACITY`] events behind gets
//! `RecvError::Lagged` and silently **skips** the events it missed (counted in
//! `GET /stats` as `lagged_skipped`), instead of being disconnected or caught up.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::Stream;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Events a topic's channel holds for its slowest subscriber before that one lags.
pub const CHANNEL_CAPACITY: usize = 1024;

struct Topic {
    tx: broadcast::Sender<(u64, Bytes)>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Hub {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    lagged_skipped: AtomicU64,
}

impl Hub {
    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap();
        topics
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Topic {
                    tx: broadcast::channel(CHANNEL_CAPACITY).0,
                    next_id: AtomicU64::new(1),
                })
            })
            .clone()
    }
}

/// The router: `GET`/`POST /topics/{*topic}` and `GET /stats`.
pub fn app() -> Router {
    Router::new()
        .route("/topics/{*topic}", get(subscribe).post(publish))
        .route("/stats", get(stats))
        .with_state(Arc::new(Hub::default()))
}

/// Serves [`app`] on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, app()).await
}

async fn subscribe(
    State(hub): State<Arc<Hub>>,
    Path(topic): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = hub.topic(&topic).tx.subscribe();
    let stream = futures_util::stream::unfold((rx, hub), |(mut rx, hub)| async move {
        loop {
            match rx.recv().await {
                Ok((id, data)) => {
                    let event = Event::default()
                        .id(id.to_string())
                        .data(String::from_utf8_lossy(&data));
                    return Some((Ok(event), (rx, hub)));
                }
                // The naive part: events this subscriber was too slow for are skipped.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    hub.lagged_skipped.fetch_add(n, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn publish(State(hub): State<Arc<Hub>>, Path(topic): Path<String>, body: Bytes) -> Response {
    let topic = hub.topic(&topic);
    let id = topic.next_id.fetch_add(1, Ordering::Relaxed);
    // No subscribers is not an error: the event is simply dropped (no history).
    let _ = topic.tx.send((id, body));
    json(format!("{{\"id\":\"{id}\"}}"))
}

async fn stats(State(hub): State<Arc<Hub>>) -> Response {
    let skipped = hub.lagged_skipped.load(Ordering::Relaxed);
    json(format!("{{\"lagged_skipped\":{skipped}}}"))
}

fn json(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}
