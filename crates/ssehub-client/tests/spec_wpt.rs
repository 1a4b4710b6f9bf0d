//! The client rows of web-platform-tests `eventsource/`, one test (or more)
//! per row, named after the wpt test. The server behaviour is the wpt server script's, written
//! out as raw bytes; where wpt uses long waits (`retry: 1000`, `sleep=1000`) the tests use
//! shorter ones with the same meaning.

use std::time::Duration;

use futures_util::future::join_all;
use ssehub_client::{Error, EventSource};

use crate::mock::{
    LIMIT, Mock, Script, expect_data, expect_end, expect_failed, expect_message,
    expect_only_message, expect_open, expect_open_data, expect_reconnecting, expect_reopen,
    expect_reopen_data, expect_silence, fast,
};

/// A reconnection time no test may wait for: when a test reconnects quickly, it is the
/// server's `retry:` that made it so.
const NEVER: Duration = Duration::from_secs(600);

/// `eventsource-onopen`, `eventsource-onmessage`: `open`, then the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onopen_then_onmessage() {
    let mock = Mock::start(vec![Script::sse_hold("data: data\n\n\n")]).await;
    let mut es = fast(&mock, "/message").build();
    assert_eq!(expect_open(&mut es).await, mock.url("/message"));
    expect_data(&mut es, "data", "").await;
    expect_silence(&mut es).await;
}

/// `eventsource-close` (test 1): after `close()` nothing more is yielded, the connection is
/// dropped and the client never reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_then_nothing_more() {
    let mock = Mock::start(vec![Script::sse_hold("data: one\n\n")]).await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "one", "").await;
    es.close();
    expect_end(&mut es).await;
    mock.wait_peer_closed(0).await;
    mock.assert_connections_stay(1).await;
    expect_end(&mut es).await;
}

/// `eventsource-close`: events already received but not yet read are not yielded after
/// `close()` ("no events are dispatched afterwards").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_discards_buffered_events() {
    let body: String = (0..20).map(|i| format!("data: {i}\n\n")).collect();
    let mock = Mock::start(vec![Script::sse_hold(body)]).await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "0", "").await;
    // Give the background task time to queue the rest.
    tokio::time::sleep(Duration::from_millis(100)).await;
    es.close();
    expect_end(&mut es).await;
    mock.assert_connections_stay(1).await;
}

/// `eventsource-close` (test 2, `reconnect-fail.py`): `opened`, reconnect, `reconnected`,
/// reconnect, then a 204 ends the stream for good: its body is never delivered and there is no
/// further attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reconnect_fail_204() {
    let mock = Mock::start(vec![
        Script::sse("retry: 2\ndata: opened\n\n"),
        Script::sse("data: reconnected\n\n"),
        Script::new()
            .head(204, &[("Content-Type", "text/event-stream")])
            .write("data: must never be read\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").reconnection_time(NEVER).build();
    expect_open_data(&mut es, "opened", "").await;
    expect_reopen_data(&mut es, "reconnected", "").await;
    expect_reconnecting(&mut es).await;
    expect_stopped_by_204(&mut es).await;
    mock.assert_connections_stay(3).await;
}

/// After a 204 the stream ends: no `Open`, no message; an error, if any, is fatal.
pub(crate) async fn expect_stopped_by_204(es: &mut EventSource) {
    loop {
        match tokio::time::timeout(LIMIT, futures_util::StreamExt::next(es)).await {
            Ok(None) => return,
            Ok(Some(Err(e))) if e.is_fatal() => {}
            Ok(Some(item)) => panic!("expected the stream to stop after 204, got {item:?}"),
            Err(_) => panic!("the stream did not end after 204"),
        }
    }
}

/// `eventsource-reconnect` (1): a body of only `retry: 2\n` (the block never completes) still
/// sets the reconnection time; the client reconnects after ~2 ms, not the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_retry_from_unfinished_block() {
    let mock = Mock::start(vec![
        Script::sse("retry: 2\n"),
        Script::sse_hold("data: data\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").reconnection_time(NEVER).build();
    expect_open(&mut es).await;
    expect_reopen_data(&mut es, "data", "").await;
}

/// `eventsource-reconnect` (2): `ok`, then an error while reconnecting (readyState
/// CONNECTING: non-fatal), then `data` from the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_error_then_message() {
    let mock = Mock::start(vec![
        Script::sse("retry: 2\ndata: ok\n\n"),
        Script::sse_hold("data: data\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").reconnection_time(NEVER).build();
    expect_open_data(&mut es, "ok", "").await;
    let e = expect_reconnecting(&mut es).await;
    assert!(matches!(e, Error::StreamEnded), "{e:?}");
    expect_open_data(&mut es, "data", "").await;
}

/// The reconnection delay of connection `i + 1`: from the end of connection `i`'s body to the
/// next accept. The client cannot start waiting before the body ended, so this is a lower
/// bound on its wait.
async fn gap_after(mock: &Mock, i: usize) -> Duration {
    let end = mock.wait_finished(i).await;
    let next = mock.wait_connections(i + 2).await[i + 1].accepted;
    next - end
}

/// Two connections at `/` with these bodies (the second held open), each carrying one event
/// with this data and no id, read by a client whose own reconnection time is
/// `reconnection_time`: it reconnects no sooner than 300 ms after the first body ended.
async fn reconnects_after_300ms(bodies: [&str; 2], data: [&str; 2], reconnection_time: Duration) {
    let mock = Mock::start(vec![Script::sse(bodies[0]), Script::sse_hold(bodies[1])]).await;
    let mut es = fast(&mock, "/")
        .reconnection_time(reconnection_time)
        .build();
    expect_open_data(&mut es, data[0], "").await;
    expect_reopen_data(&mut es, data[1], "").await;
    let gap = gap_after(&mock, 0).await;
    assert!(gap >= Duration::from_millis(300), "{gap:?}");
}

/// `format-field-retry`: `retry:0300` is 300 ms (leading zeros are decimal, not octal's 192).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_retry() {
    reconnects_after_300ms(["retry:0300\ndata:x\n\n", "data:y\n\n"], ["x", "y"], NEVER).await;
}

/// `format-field-retry-bogus`: invalid `retry` values are ignored and the last valid one
/// stays (were `30000x` or any other taken, the reconnect would not come within the test's
/// limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_retry_bogus() {
    reconnects_after_300ms(
        [
            "retry:300\nretry:30000x\nretry: +30000\nretry:-1\nretry:3e4\nretry: 30000.0\n\
             retry:  30000\nretry:0x7530\ndata:x\n\n",
            "data:y\n\n",
        ],
        ["x", "y"],
        NEVER,
    )
    .await;
}

/// `format-field-retry-empty`: `retry` without a value leaves the reconnection time as it was
/// (here 300 ms; were it taken as 0 the client would come back at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_retry_empty() {
    reconnects_after_300ms(
        ["retry\ndata:test\n\n", "data:again\n\n"],
        ["test", "again"],
        Duration::from_millis(300),
    )
    .await;
}

/// `format-field-id`, `format-field-id-2` (`last-event-id.py`): a non-ASCII id (`…`, UTF-8
/// e2 80 a6) is sent byte-exact as `Last-Event-ID` on the first reconnect *and* on the second,
/// although the reconnected bodies carry no `id:`; their events report `…` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_id_utf8_across_two_reconnects() {
    let mock = Mock::start(vec![
        Script::sse("id: …\nretry: 20\ndata: hello\n\n"),
        Script::sse("data: second\n\n"),
        Script::sse_hold("data: third\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").reconnection_time(NEVER).build();
    expect_open_data(&mut es, "hello", "…").await;
    expect_reopen_data(&mut es, "second", "…").await;
    expect_reopen_data(&mut es, "third", "…").await;
    assert!(mock.request(0).await.lacks("last-event-id"));
    for i in [1, 2] {
        assert_eq!(
            mock.request(i).await.one("last-event-id"),
            b"\xe2\x80\xa6",
            "request {i}"
        );
    }
    assert_eq!(es.last_event_id(), "…");
}

/// `format-field-id-null`: ids containing NUL are ignored, so the events report `""` and the
/// reconnect sends no `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_id_null() {
    let mock = Mock::start(vec![
        Script::sse(
            "retry: 20\nid:\0\0\ndata: a\n\nid:x\0\ndata: b\n\nid:\0x\ndata: c\n\n\
             id:x\0x\ndata: d\n\nid: \0\ndata: e\n\n",
        ),
        Script::sse_hold("data: hello\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    for data in ["a", "b", "c", "d", "e"] {
        expect_data(&mut es, data, "").await;
    }
    expect_reopen_data(&mut es, "hello", "").await;
    assert!(mock.request(1).await.lacks("last-event-id"));
}

/// `format-field-id-null`, with an id before: the NUL id is ignored whole and the previous id
/// stays, on the events and on the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_id_null_keeps_previous_id() {
    let mock = Mock::start(vec![
        Script::sse("retry: 20\nid: ok\ndata: a\n\nid: x\0\ndata: b\n\n"),
        Script::sse_hold("data: c\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "a", "ok").await;
    expect_data(&mut es, "b", "ok").await;
    expect_reopen_data(&mut es, "c", "ok").await;
    assert_eq!(mock.request(1).await.one("last-event-id"), b"ok");
}

/// `format-field-id-3` (`last-event-id2.py`): the id persists over events without `id:`, and
/// `id:` or a bare `id` resets it; a reset id is not sent on the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_field_id_persist_and_reset() {
    let mock = Mock::start(vec![
        Script::sse(
            "id: 1\ndata: a\n\ndata: b\n\nid:\ndata: c\n\nid: 2\ndata: d\n\n\
             id\ndata: e\n\ndata: f\n\n",
        ),
        Script::sse_hold("data: g\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    for (data, id) in [
        ("a", "1"),
        ("b", "1"),
        ("c", ""),
        ("d", "2"),
        ("e", ""),
        ("f", ""),
    ] {
        expect_data(&mut es, data, id).await;
    }
    expect_reopen_data(&mut es, "g", "").await;
    assert!(mock.request(1).await.lacks("last-event-id"));
}

/// `format-data-before-final-empty-line`: the unterminated last block is not dispatched and
/// its `id:test` never takes effect: the reconnect has no `Last-Event-ID`, and the second
/// `test1` still reports `""`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_data_before_final_empty_line() {
    let body = "retry:20\ndata:test1\n\nid:test\ndata:test2\n";
    let mock = Mock::start(vec![
        Script::sse(body),
        Script::sse(body),
        Script::sse_hold(""),
    ])
    .await;
    let mut es = fast(&mock, "/").reconnection_time(NEVER).build();
    expect_open_data(&mut es, "test1", "").await;
    expect_reopen_data(&mut es, "test1", "").await;
    expect_reopen(&mut es).await;
    for i in [1, 2] {
        assert!(mock.request(i).await.lacks("last-event-id"), "request {i}");
    }
    assert_eq!(es.last_event_id(), "");
}

/// A 200 with this Content-Type (or none) and a valid body must fail: one fatal error, no
/// message, the end, no reconnect.
async fn content_type_fails(content_type: Option<&str>) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("Content-Type", ct))
        .into_iter()
        .collect();
    let mock = Mock::start(vec![
        Script::new().head(200, &headers).write("data: data\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    let e = expect_failed(&mut es).await;
    match e {
        Error::ContentType(got) => assert_eq!(got.as_deref(), content_type),
        other => panic!("expected a content type error, got {other:?}"),
    }
    mock.assert_connections_stay(1).await;
}

/// `format-mime-bogus`: `Content-Type: x bogus`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mime_bogus() {
    content_type_fails(Some("x bogus")).await;
}

/// `format-mime-valid-bogus`: `Content-Type: text/x-bogus`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mime_valid_bogus() {
    content_type_fails(Some("text/x-bogus")).await;
}

/// No Content-Type at all fails too (§2 "missing Content-Type fail").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mime_missing() {
    content_type_fails(None).await;
}

/// `format-mime-trailing-semicolon`: `text/event-stream;` opens normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mime_trailing_semicolon() {
    expect_only_message(
        Script::new()
            .head(200, &[("Content-Type", "text/event-stream;")])
            .write("data: data\n\n")
            .hold(),
        "data",
    )
    .await;
}

/// `format-utf-8`: the charset parameter is ignored and the body decoded as UTF-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_utf_8() {
    expect_only_message(
        Script::new()
            .head(
                200,
                &[("Content-Type", "text/event-stream;charset=windows-1252")],
            )
            .write("data: ok…\n\n")
            .hold(),
        "ok…",
    )
    .await;
}

/// `request-status-error`: 205, 210, 299, 404, 410, 503 (and 500) fail: a fatal status error,
/// never a message, the end, no reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_status_error() {
    join_all(
        [205, 210, 299, 404, 410, 500, 503].map(|status| async move {
            let body = if status == 205 { "" } else { "data: data\n\n" };
            let mock = Mock::start(vec![
                Script::new()
                    .head(status, &[("Content-Type", "text/event-stream")])
                    .write(body),
            ])
            .await;
            let mut es = fast(&mock, "/").build();
            match expect_failed(&mut es).await {
                Error::Status { status: got, fatal } => {
                    assert_eq!((got.as_u16(), fatal), (status, true));
                }
                other => panic!("{status}: expected a status error, got {other:?}"),
            }
            mock.assert_connections_stay(1).await;
        }),
    )
    .await;
}

/// `request-status-error` for 204, the server's "stop reconnecting": no message, the stream
/// ends, no further attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_status_error_204() {
    let mock = Mock::start(vec![
        Script::new().head(204, &[("Content-Type", "text/event-stream")]),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_stopped_by_204(&mut es).await;
    mock.assert_connections_stay(1).await;
}

/// `request-redirect`: 301, 302, 303, 307 (and 308) are followed; the stream opens on the
/// target, whose URL the `Open` event reports (the events' origin); the request to the target
/// is still an event-stream request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_redirect() {
    join_all([301, 302, 303, 307, 308].map(|status| async move {
        let mock = Mock::start(vec![
            Script::new().head(status, &[("Location", "/final?from=redirect")]),
            Script::sse_hold("data: data\n\n"),
        ])
        .await;
        let mut es = fast(&mock, "/start").build();
        assert_eq!(
            expect_open(&mut es).await,
            mock.url("/final?from=redirect"),
            "{status}"
        );
        expect_data(&mut es, "data", "").await;
        let first = mock.request(0).await;
        let second = mock.request(1).await;
        assert_eq!(
            (first.path.as_str(), second.path.as_str()),
            ("/start", "/final?from=redirect")
        );
        assert_eq!(second.method, "GET");
        assert_eq!(second.text("accept"), "text/event-stream");
        assert_eq!(second.text("cache-control"), "no-cache");
        mock.assert_connections_stay(2).await;
    }))
    .await;
}

/// `request-accept`: `Accept` is exactly `text/event-stream`, on the first connection and on a
/// reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_accept() {
    let mock = Mock::start(vec![Script::sse("data: a\n\n"), Script::sse_hold("")]).await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    expect_message(&mut es).await;
    expect_reopen(&mut es).await;
    for i in [0, 1] {
        assert_eq!(mock.request(i).await.text("accept"), "text/event-stream");
    }
}

/// `request-cache-control`: `Cache-Control: no-cache` on the first connection, on a reconnect,
/// and on a second EventSource to the same URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cache_control() {
    let mock = Mock::start(vec![
        Script::sse("data: a\n\n"),
        Script::sse_hold(""),
        Script::sse_hold(""),
    ])
    .await;
    let mut es = fast(&mock, "/same").build();
    expect_open(&mut es).await;
    expect_message(&mut es).await;
    expect_reopen(&mut es).await;
    let mut second = fast(&mock, "/same").build();
    expect_open(&mut second).await;
    for i in [0, 1, 2] {
        let request = mock.request(i).await;
        assert_eq!(request.path, "/same");
        assert_eq!(request.text("cache-control"), "no-cache", "request {i}");
    }
}

/// `eventsource-request-cancellation`: the headers are delayed and the EventSource is dropped
/// meanwhile: the request is cancelled (the server sees the connection closed) and nothing is
/// attempted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cancellation_by_drop() {
    let mock = Mock::start(vec![
        Script::new()
            .sleep(5_000)
            .sse_head()
            .write("data: late\n\n"),
    ])
    .await;
    let es = fast(&mock, "/").build();
    mock.request(0).await;
    drop(es);
    mock.wait_peer_closed(0).await;
    mock.assert_connections_stay(1).await;
}

/// `eventsource-request-cancellation` with `close()`: the same, and the stream yields nothing
/// (never `Open`, never the message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cancellation_by_close() {
    let mock = Mock::start(vec![
        Script::new()
            .sleep(5_000)
            .sse_head()
            .write("data: late\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    mock.request(0).await;
    es.close();
    expect_end(&mut es).await;
    mock.wait_peer_closed(0).await;
    mock.assert_connections_stay(1).await;
}

/// `eventsource-cross-origin-preflight` (`cors-unsafe-last-event-id.py`): ids with characters
/// a CORS-safelisted header may not hold, and a 255-character id, are sent back byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_last_event_ids_sent_exactly() {
    let long = "a".repeat(255);
    join_all(["abc", "e5p3n<3k0k0s", long.as_str()].map(|id| async move {
        let mock = Mock::start(vec![
            Script::sse(format!("id: {id}\nretry: 20\ndata: x\n\n")),
            Script::sse_hold(""),
        ])
        .await;
        let mut es = fast(&mock, "/").build();
        expect_open_data(&mut es, "x", id).await;
        expect_reopen(&mut es).await;
        assert_eq!(mock.request(1).await.one("last-event-id"), id.as_bytes());
    }))
    .await;
}

/// Not a wpt row, but §1.3 step 1 as browsers run it: the last event id string moves on every
/// blank line, even one that dispatches nothing (`id: 42\n\n`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_only_block_moves_the_last_event_id() {
    let mock = Mock::start(vec![
        Script::sse("data: a\n\nid: 42\n\n"),
        Script::sse_hold("data: b\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "a", "").await;
    expect_reopen_data(&mut es, "b", "42").await;
    assert_eq!(mock.request(1).await.one("last-event-id"), b"42");
}
