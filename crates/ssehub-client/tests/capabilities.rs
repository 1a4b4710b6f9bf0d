//! The optional capabilities of LaunchDarkly's sse-contract-tests and what
//! the crate adds on top: custom headers, POST/REPORT bodies, an initial last event id, the
//! read timeout, comments, caller-forced reconnects, event types, the BOM per body, parser
//! limits, backoff after failures and retrying server errors on request.
//!
//! Timing assertions are lower bounds (a timer never fires early, and the mock's timestamps
//! bracket the client's waits from outside); the only upper bounds are far above the expected
//! value, to tell "capped" from "growing without bound".

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use ssehub_client::{Backoff, Error, Event, EventSource, Limits, ParseError};

use crate::mock::{
    Mock, Script, expect_data, expect_end, expect_error, expect_failed, expect_only_message,
    expect_open, expect_open_data, expect_reconnecting, expect_reopen, expect_reopen_data,
    expect_silence, fast, next,
};

/// A chunk header announcing more bytes than will ever come: the connection breaks mid-chunk.
const BREAK: &str = "ff\r\nbroken";

fn header(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// `headers`: custom request headers go with every connection, next to the standard ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_on_every_connection() {
    let mock = Mock::start(vec![Script::sse("data: a\n\n"), Script::sse_hold("")]).await;
    let (n1, v1) = header("header-name-1", "value-1");
    let (n2, v2) = header("authorization", "Bearer secret");
    let mut es = fast(&mock, "/").header(n1, v1).header(n2, v2).build();
    expect_open_data(&mut es, "a", "").await;
    expect_reopen(&mut es).await;
    for i in [0, 1] {
        let request = mock.request(i).await;
        assert_eq!(request.text("header-name-1"), "value-1", "request {i}");
        assert_eq!(
            request.text("authorization"),
            "Bearer secret",
            "request {i}"
        );
        assert_eq!(request.text("accept"), "text/event-stream", "request {i}");
        assert_eq!(request.text("cache-control"), "no-cache", "request {i}");
    }
}

/// `post` / `report`: the method and the body, sent again (with `Last-Event-ID`) when the
/// connection breaks and the client reconnects.
async fn body_resent_on_reconnect(method: Method) {
    let json = r#"{"hello": "world"}"#;
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk("id: 1\ndata: a\n\n")
            .sleep(50)
            .write(BREAK),
        Script::sse_hold(""),
    ])
    .await;
    let mut es = fast(&mock, "/")
        .method(method.clone())
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )
        .body(json)
        .build();
    expect_open_data(&mut es, "a", "1").await;
    expect_reopen(&mut es).await;
    for i in [0, 1] {
        let request = mock.request(i).await;
        assert_eq!(request.method, method.as_str(), "request {i}");
        assert_eq!(request.body, json.as_bytes(), "request {i}");
        assert_eq!(
            request.text("content-type"),
            "application/json; charset=utf-8"
        );
    }
    assert_eq!(mock.request(1).await.one("last-event-id"), b"1");
}

/// `post`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_body_resent_on_reconnect() {
    body_resent_on_reconnect(Method::POST).await;
}

/// `report`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_body_resent_on_reconnect() {
    body_resent_on_reconnect(Method::from_bytes(b"REPORT").unwrap()).await;
}

/// `last-event-id`: the initial id is sent on the first request and treated as received:
/// events without an id report it, and the reconnect sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_last_event_id() {
    let mock = Mock::start(vec![Script::sse("data: first\n\n"), Script::sse_hold("")]).await;
    let mut es = fast(&mock, "/").last_event_id("abc").build();
    assert_eq!(es.last_event_id(), "abc");
    expect_open_data(&mut es, "first", "abc").await;
    expect_reopen(&mut es).await;
    for i in [0, 1] {
        assert_eq!(
            mock.request(i).await.one("last-event-id"),
            b"abc",
            "request {i}"
        );
    }
}

/// `read-timeout`: a stream gone silent is dropped after the timeout with an error, and the
/// client reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_reconnects_silent_stream() {
    let mock = Mock::start(vec![
        Script::sse_hold("id: 5\ndata: Hello\n\n"),
        Script::sse_hold("data: again\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/")
        .read_timeout(Duration::from_millis(500))
        .build();
    expect_open_data(&mut es, "Hello", "5").await;
    let e = expect_reconnecting(&mut es).await;
    assert!(matches!(e, Error::ReadTimeout(_)), "{e:?}");
    expect_open_data(&mut es, "again", "5").await;
    let dropped = mock.wait_peer_closed(0).await;
    let first = mock.conns()[0].accepted;
    assert!(dropped - first >= Duration::from_millis(500));
    assert_eq!(mock.request(1).await.one("last-event-id"), b"5");
}

/// The read timeout also covers a server that accepts but does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_covers_delayed_headers() {
    let mock = Mock::start(vec![
        Script::new()
            .sleep(5_000)
            .sse_head()
            .write("data: late\n\n"),
        Script::sse_hold("data: on time\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/")
        .read_timeout(Duration::from_millis(300))
        .build();
    let e = expect_reconnecting(&mut es).await;
    assert!(matches!(e, Error::ReadTimeout(_)), "{e:?}");
    expect_open_data(&mut es, "on time", "").await;
    mock.wait_peer_closed(0).await;
}

/// `read-timeout` with heartbeats: comment lines (any bytes) keep a stream alive far past the
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_stream_alive() {
    trickle_past_read_timeout(std::iter::repeat_n(":\n", 15), "data: alive\n\n", "alive").await;
}

/// One connection that writes each of `pieces` 100 ms apart, then `last`, and holds, read
/// with a 1 s read timeout: `Open`, a message with `data`, and no reconnect.
async fn trickle_past_read_timeout<P: AsRef<[u8]>>(
    pieces: impl IntoIterator<Item = P>,
    last: &str,
    data: &str,
) {
    let mut script = Script::new().sse_head();
    for piece in pieces {
        script = script.sleep(100).write(piece);
    }
    let mock = Mock::start(vec![script.write(last).hold()]).await;
    let mut es = fast(&mock, "/")
        .read_timeout(Duration::from_secs(1))
        .build();
    expect_open_data(&mut es, data, "").await;
    assert_eq!(mock.connections(), 1);
}

/// Any byte resets the read timeout, even the pieces of a line that is not finished yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_line_bytes_reset_read_timeout() {
    let line = "data: abcdefghij";
    trickle_past_read_timeout(line.bytes().map(|byte| [byte]), "\n\n", "abcdefghij").await;
}

/// `comments`: with `.comments(true)` comment lines come as `Event::Comment` without the
/// colon (a space after it is kept), as soon as their line ends, in stream order, without
/// disturbing the event they sit in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_surfaced() {
    let mock = Mock::start(vec![
        Script::new()
            .sse_head()
            .write(":Hello\n")
            .sleep(100)
            .write(": spaced\ndata: a\n:inside\ndata: b\n\n:World\n")
            .hold(),
    ])
    .await;
    let mut es = fast(&mock, "/").comments(true).build();
    expect_open(&mut es).await;
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(next(&mut es).await.unwrap());
    }
    let expected: Vec<Event> = vec![
        Event::Comment("Hello".into()),
        Event::Comment(" spaced".into()),
        Event::Comment("inside".into()),
        Event::Message(ssehub_client::MessageEvent {
            event_type: "message".into(),
            data: "a\nb".into(),
            last_event_id: String::new(),
        }),
        Event::Comment("World".into()),
    ];
    assert_eq!(items, expected);
}

/// Comments are not surfaced unless asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_hidden_by_default() {
    expect_only_message(
        Script::sse_hold(":Hello\ndata: a\n:inside\ndata: b\n\n:World\n"),
        "a\nb",
    )
    .await;
}

/// `restart`: `reconnect()` drops the connection and reconnects at once (not after the
/// reconnection time), resuming with `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_forces_new_connection() {
    let mock = Mock::start(vec![
        Script::sse_hold("id: 7\ndata: Hello\n\n"),
        Script::sse_hold("data: Thanks\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/")
        .reconnection_time(Duration::from_secs(600))
        .build();
    expect_open_data(&mut es, "Hello", "7").await;
    es.reconnect();
    expect_open_data(&mut es, "Thanks", "7").await;
    mock.wait_peer_closed(0).await;
    assert_eq!(mock.request(1).await.one("last-event-id"), b"7");
    mock.assert_connections_stay(2).await;
}

/// `event-type-listeners`: the `event:` field sets the type; an empty one means `message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types() {
    let mock = Mock::start(vec![Script::sse_hold(
        "event: greeting\ndata: hi\n\nevent:\ndata: plain\n\n\
         event: a\nevent: b\ndata: last wins\n\n",
    )])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    for (event_type, data) in [("greeting", "hi"), ("message", "plain"), ("b", "last wins")] {
        match next(&mut es).await {
            Ok(Event::Message(m)) => {
                assert_eq!((m.event_type.as_str(), m.data.as_str()), (event_type, data))
            }
            other => panic!("{other:?}"),
        }
    }
}

/// `bom`: a leading BOM is stripped from every body (also one split across writes), and only
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bom_stripped_per_body() {
    let mock = Mock::start(vec![
        Script::sse("\u{FEFF}data: a\n\n\u{FEFF}data: ignored line\n\n"),
        Script::new()
            .sse_head()
            .write(b"\xEF")
            .sleep(50)
            .write(b"\xBB\xBFdata: b\n\n")
            .hold(),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "a", "").await;
    expect_reopen_data(&mut es, "b", "").await;
    expect_silence(&mut es).await;
}

/// Parser limits: an event over the cap is a non-fatal error, dropped, and the stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_limit_error_is_not_fatal() {
    let body = format!("data: {}\n\ndata: ok\n\n", "x".repeat(100));
    let mock = Mock::start(vec![Script::sse_hold(body)]).await;
    let mut es = fast(&mock, "/")
        .limits(Limits {
            max_line_bytes: 64,
            max_data_bytes: 64,
        })
        .build();
    expect_open(&mut es).await;
    let e = expect_error(&mut es).await;
    assert!(!e.is_fatal());
    assert!(
        matches!(e, Error::Parse(ParseError::LineTooLong { limit: 64 })),
        "{e:?}"
    );
    expect_data(&mut es, "ok", "").await;
    assert_eq!(mock.connections(), 1);
}

/// The smallest wait the backoff allows after `failures` failed attempts in a row
/// (half the exponential value, capped).
fn min_backoff(backoff: Backoff, failures: u32) -> Duration {
    backoff.delay(failures, Duration::ZERO, 0.0)
}

const SLOW_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(100),
};

/// The least the first `waits` waits of [`SLOW_BACKOFF`] would take without its cap (tens of
/// seconds for ten): a capped backoff stays far under it on any machine, so the test asks
/// that rather than a wall-clock bound.
fn uncapped_min(waits: u32) -> Duration {
    let uncapped = Backoff {
        max: Duration::from_secs(3600),
        ..SLOW_BACKOFF
    };
    (1..=waits).map(|f| min_backoff(uncapped, f)).sum()
}

/// Backoff after a server that accepts and closes at once: every attempt is a non-fatal
/// error, the waits grow (each at least the backoff's lower bound), and they are capped: ten
/// failures take well under the 25 s that uncapped doubling would need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_grows_and_caps_when_server_slams() {
    const FAILURES: usize = 10;
    let mut scripts = vec![Script::slam(); FAILURES];
    scripts.push(Script::sse_hold("data: up\n\n"));
    let mock = Mock::start(scripts).await;
    let mut es = EventSource::builder(mock.url("/"))
        .reconnection_time(Duration::from_millis(1))
        .backoff(SLOW_BACKOFF)
        .build();
    for _ in 0..FAILURES {
        let e = expect_reconnecting(&mut es).await;
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
    }
    expect_open_data(&mut es, "up", "").await;
    let conns = mock.conns();
    assert_eq!(conns.len(), FAILURES + 1);
    for (i, pair) in conns.windows(2).enumerate() {
        let gap = pair[1].accepted - pair[0].accepted;
        let min = min_backoff(SLOW_BACKOFF, i as u32 + 1);
        assert!(gap >= min, "attempt {}: waited {gap:?} < {min:?}", i + 2);
    }
    assert!(min_backoff(SLOW_BACKOFF, 1) < min_backoff(SLOW_BACKOFF, 2));
    let total = conns[FAILURES].accepted - conns[0].accepted;
    // Capped: about 50 + 9 × 100 ms; uncapped it would be ≥ 25.5 s.
    let uncapped = uncapped_min(FAILURES as u32);
    assert!(total < uncapped, "{total:?} ≥ {uncapped:?}");
}

/// Backoff when the port refuses connections: the same growth and cap, measured from the
/// client's side (the n-th error cannot come before the sum of the first n − 1 waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_when_port_refused() {
    const FAILURES: u32 = 12;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = Instant::now();
    let mut es = EventSource::builder(format!("http://127.0.0.1:{port}/"))
        .reconnection_time(Duration::from_millis(1))
        .backoff(SLOW_BACKOFF)
        .build();
    for _ in 0..FAILURES {
        let e = expect_reconnecting(&mut es).await;
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
    }
    let elapsed = start.elapsed();
    let min: Duration = (1..FAILURES).map(|f| min_backoff(SLOW_BACKOFF, f)).sum();
    assert!(elapsed >= min, "{elapsed:?} < {min:?}");
    // Capped: about 50 + 10 × 100 ms; uncapped it would be ≥ 51 s.
    let uncapped = uncapped_min(FAILURES - 1);
    assert!(elapsed < uncapped, "{elapsed:?} ≥ {uncapped:?}");
    es.close();
    expect_end(&mut es).await;
}

/// `.retry_server_errors(true)`: 5xx and 429 are retried (non-fatal errors, with backoff)
/// until the stream opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_server_errors_retries_5xx_and_429() {
    let statuses = [500, 502, 503, 429];
    let mut scripts: Vec<Script> = statuses
        .iter()
        .map(|&s| Script::new().head(s, &[("Content-Type", "text/event-stream")]))
        .collect();
    scripts.push(Script::sse_hold("data: finally\n\n"));
    let mock = Mock::start(scripts).await;
    let mut es = fast(&mock, "/").retry_server_errors(true).build();
    for status in statuses {
        match expect_reconnecting(&mut es).await {
            Error::Status {
                status: got,
                fatal: false,
            } => assert_eq!(got.as_u16(), status),
            other => panic!("expected a status error, got {other:?}"),
        }
    }
    expect_open_data(&mut es, "finally", "").await;
}

/// `.retry_server_errors(true)` still stops for good on 204.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_server_errors_204_still_stops() {
    let mock = Mock::start(vec![
        Script::new().head(503, &[]),
        Script::new().head(204, &[]),
    ])
    .await;
    let mut es = fast(&mock, "/").retry_server_errors(true).build();
    expect_reconnecting(&mut es).await;
    crate::spec_wpt::expect_stopped_by_204(&mut es).await;
    mock.assert_connections_stay(2).await;
}

/// `.retry_server_errors(true)` does not retry other 4xx, or a bad content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_server_errors_other_failures_still_fatal() {
    join_all(
        [
            Script::new().head(404, &[("Content-Type", "text/event-stream")]),
            Script::new().head(400, &[]),
            Script::new()
                .head(200, &[("Content-Type", "text/plain")])
                .write("data: x\n\n"),
        ]
        .map(|script| async move {
            let mock = Mock::start(vec![script]).await;
            let mut es = fast(&mock, "/").retry_server_errors(true).build();
            expect_failed(&mut es).await;
            mock.assert_connections_stay(1).await;
        }),
    )
    .await;
}
