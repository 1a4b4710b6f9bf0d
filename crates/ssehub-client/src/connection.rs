//! The background task of an [`EventSource`](crate::EventSource): connect, check the response,
//! read and parse the body, and reconnect — the standard's "establish", "announce", "interpret"
//! and "reestablish" steps — until the stream is closed or fails.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use ssehub_wire::{Frame, Parser};
use tokio::sync::mpsc;

use crate::{Builder, Error, Event, Shared};

/// What ended one connection.
enum Outcome {
    /// Reconnect after waiting, counting `failures` failed attempts in a row.
    Reconnect { failures: u32 },
    /// Reconnect at once: the caller asked for it with `EventSource::reconnect`.
    ReconnectNow,
    /// Stop for good (204, a fatal error, or nobody is listening any more).
    Stop,
}

pub(crate) async fn run(cfg: Builder, tx: mpsc::Sender<Result<Event, Error>>, shared: Arc<Shared>) {
    let client = cfg.client.clone().unwrap_or_else(|| default_client(&cfg));
    let mut parser = Parser::with_limits(cfg.limits).with_comments(cfg.comments);
    parser.set_last_event_id(cfg.last_event_id.as_str());
    let mut reconnection_time = cfg.reconnection_time;
    let mut failures = 0u32;
    loop {
        let outcome = connect_once(&cfg, &client, &mut parser, &tx, &shared, failures).await;
        parser.end_body();
        if let Some(ms) = parser.reconnection_time_ms() {
            reconnection_time = Duration::from_millis(ms);
        }
        match outcome {
            Outcome::Stop => return,
            Outcome::Reconnect { failures: f } => failures = f,
            Outcome::ReconnectNow => {
                failures = 0;
                continue;
            }
        }
        let delay = cfg
            .backoff
            .delay(failures, reconnection_time, rand::random::<f64>());
        tracing::debug!(?delay, failures, "reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.reconnect.notified() => {}
            _ = tx.closed() => return,
        }
    }
}

async fn connect_once(
    cfg: &Builder,
    client: &reqwest::Client,
    parser: &mut Parser,
    tx: &mpsc::Sender<Result<Event, Error>>,
    shared: &Shared,
    failures: u32,
) -> Outcome {
    let failed = Outcome::Reconnect {
        failures: failures.saturating_add(1),
    };
    let mut request = client
        .request(cfg.method.clone(), &cfg.url)
        .header(ACCEPT, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache")
        .headers(cfg.headers.clone());
    let id = parser.last_event_id();
    if !id.is_empty() {
        // The id came from the stream as UTF-8 without CR, LF or NUL, so it is a valid header
        // value unless it holds other control characters; those ids cannot be sent back.
        match HeaderValue::from_str(id) {
            Ok(value) => request = request.header("last-event-id", value),
            Err(_) => {
                tracing::warn!("the last event id cannot be sent as a header; resuming without it")
            }
        }
    }
    if let Some(body) = &cfg.body {
        request = request.body(body.clone());
    }
    let sent = match cfg.read_timeout {
        Some(limit) => match tokio::time::timeout(limit, request.send()).await {
            Ok(sent) => sent,
            Err(_) => return report(tx, Error::ReadTimeout(limit), failed).await,
        },
        None => request.send().await,
    };
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_redirect() => return report(tx, Error::Transport(e), Outcome::Stop).await,
        Err(e) => return report(tx, Error::Transport(e), failed).await,
    };
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return Outcome::Stop;
    }
    if status != StatusCode::OK {
        let retry = cfg.retry_server_errors
            && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS);
        let error = Error::Status {
            status,
            fatal: !retry,
        };
        return report(tx, error, if retry { failed } else { Outcome::Stop }).await;
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !is_event_stream(content_type.as_deref()) {
        return report(tx, Error::ContentType(content_type), Outcome::Stop).await;
    }
    if tx
        .send(Ok(Event::Open {
            url: response.url().to_string(),
        }))
        .await
        .is_err()
    {
        return Outcome::Stop;
    }

    let mut body = response.bytes_stream();
    loop {
        let next = tokio::select! {
            next = read(&mut body, cfg.read_timeout) => next,
            _ = shared.reconnect.notified() => return Outcome::ReconnectNow,
            _ = tx.closed() => return Outcome::Stop,
        };
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            // A clean end: reconnect after the reconnection time.
            Ok(None) => {
                return report(tx, Error::StreamEnded, Outcome::Reconnect { failures: 0 }).await;
            }
            Ok(Some(Err(e))) => {
                return report(tx, Error::Transport(e), Outcome::Reconnect { failures: 0 }).await;
            }
            Err(limit) => {
                return report(
                    tx,
                    Error::ReadTimeout(limit),
                    Outcome::Reconnect { failures: 0 },
                )
                .await;
            }
        };
        // Complete lines are read straight from the chunk; the rest of it stays in the parser
        // when the loop ends early.
        for frame in parser.feed_iter(&chunk) {
            let item = match frame {
                Ok(Frame::Event(message)) => {
                    let mut id = shared
                        .last_event_id
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    id.clone_from(&message.last_event_id);
                    drop(id);
                    Ok(Event::Message(message))
                }
                Ok(Frame::Comment(text)) => Ok(Event::Comment(text)),
                Err(e) => Err(Error::Parse(e)),
            };
            if tx.send(item).await.is_err() {
                return Outcome::Stop;
            }
        }
        // The id also moves on blank lines that dispatch nothing (`id: 7` then a blank line).
        let mut id = shared
            .last_event_id
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *id != parser.last_event_id() {
            *id = parser.last_event_id().to_string();
        }
    }
}

/// reqwest's default client, except that a redirect to the URL that answered it (what an
/// empty `Location` resolves to) is an error rather than a loop, unless it changes the method
/// (a POST answered by a 303 to itself, to GET the stream).
/// With feature `tls`, it checks an `https://` server's certificate as `cfg.tls` says.
fn default_client(cfg: &Builder) -> reqwest::Client {
    let keeps_method = matches!(cfg.method, reqwest::Method::GET | reqwest::Method::HEAD);
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let changes_method = !keeps_method && matches!(attempt.status().as_u16(), 301..=303);
        if attempt.previous().last() == Some(attempt.url()) && !changes_method {
            attempt.error("redirected to the same URL (an empty Location?)")
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    let builder = reqwest::Client::builder().redirect(policy);
    #[cfg(feature = "tls")]
    let builder = cfg.tls.apply(builder);
    builder.build().unwrap_or_default()
}

/// The next chunk, or `Err(limit)` when nothing came within the read timeout.
async fn read(
    body: &mut (impl futures_core::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    timeout: Option<Duration>,
) -> Result<Option<reqwest::Result<bytes::Bytes>>, Duration> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, body.next())
            .await
            .map_err(|_| limit),
        None => Ok(body.next().await),
    }
}

/// Sends `error` to the consumer, then carries on with `outcome` (or stops when nobody
/// listens).
async fn report(
    tx: &mpsc::Sender<Result<Event, Error>>,
    error: Error,
    outcome: Outcome,
) -> Outcome {
    tracing::debug!(%error, "event source error");
    if tx.send(Err(error)).await.is_err() {
        return Outcome::Stop;
    }
    outcome
}

/// Whether a Content-Type's essence is `text/event-stream` (parameters ignored, case
/// insensitive).
pub(crate) fn is_event_stream(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
    })
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn content_type_essence() {
        for ok in [
            "text/event-stream",
            "text/event-stream;",
            "text/event-stream; charset=windows-1252",
            "Text/Event-Stream",
        ] {
            assert!(is_event_stream(Some(ok)), "{ok}");
        }
        for bad in [
            "text/x-bogus",
            "x bogus",
            "text/event-streams",
            "text/plain",
            "",
        ] {
            assert!(!is_event_stream(Some(bad)), "{bad}");
        }
        assert!(!is_event_stream(None));
    }
}
