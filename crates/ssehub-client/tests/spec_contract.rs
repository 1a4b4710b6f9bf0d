//! The required cases of LaunchDarkly's sse-contract-tests. "Breaking the
//! connection" is done the harsh way: a chunked body cut in the middle of a chunk, which the
//! client sees as a transport error, not as a clean end.

use futures_util::future::join_all;
use ssehub_client::Error;

use crate::mock::{
    Mock, Script, expect_data, expect_failed, expect_message, expect_open, expect_open_data,
    expect_reconnecting, expect_reopen, expect_reopen_data, expect_silence, fast,
};

/// A chunk header announcing more bytes than will ever come: the connection breaks mid-chunk.
const BREAK: &str = "ff\r\nbroken";

/// "default method and headers": GET, `Accept: text/event-stream`, `Cache-Control: no-cache`,
/// no `Last-Event-Id` on the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_method_and_headers() {
    let mock = Mock::start(vec![Script::sse_hold("")]).await;
    let mut es = fast(&mock, "/stream").build();
    expect_open(&mut es).await;
    let request = mock.request(0).await;
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/stream")
    );
    assert_eq!(request.text("accept"), "text/event-stream");
    assert_eq!(request.text("cache-control"), "no-cache");
    assert!(request.lacks("last-event-id"), "{request:?}");
    assert!(request.body.is_empty());
}

/// Follows a chain of 301 and 307 with absolute `Location`s to a working stream (single hops
/// of each status, with relative `Location`s, are in `spec_wpt::request_redirect`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_301_and_307_redirects() {
    let mock = Mock::start_with(|base| {
        vec![
            Script::new().head(301, &[("Location", &format!("{base}/hop"))]),
            Script::new().head(307, &[("Location", &format!("{base}/target"))]),
            Script::sse_hold("data: working\n\n"),
        ]
    })
    .await;
    let mut es = fast(&mock, "/start").build();
    assert_eq!(expect_open(&mut es).await, mock.url("/target"));
    expect_data(&mut es, "working", "").await;
    let mut paths = Vec::new();
    for i in 0..3 {
        paths.push(mock.request(i).await.path);
    }
    assert_eq!(paths, ["/start", "/hop", "/target"]);
    mock.assert_connections_stay(3).await;
}

/// A redirect without a usable `Location` is an error, and the client neither loops on it nor
/// reuses the URL: exactly one connection.
async fn redirect_without_location_fails(status: u16, location: Option<&str>) {
    let headers: Vec<(&str, &str)> = location.map(|l| ("Location", l)).into_iter().collect();
    let mock = Mock::start(vec![Script::new().head(status, &headers)]).await;
    let mut es = fast(&mock, "/").build();
    let e = expect_failed(&mut es).await;
    if location.is_none() {
        assert!(
            matches!(e, Error::Status { status: s, fatal: true } if s.as_u16() == status),
            "{e:?}"
        );
    }
    mock.assert_connections_stay(1).await;
}

/// 301 and 307 with no `Location` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_with_missing_location_fails() {
    join_all([301, 307].map(|status| redirect_without_location_fails(status, None))).await;
}

/// 301 and 307 with an empty `Location` (which would resolve to the URL itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_with_empty_location_fails() {
    join_all([301, 307].map(|status| redirect_without_location_fails(status, Some("")))).await;
}

/// The one redirect to the URL itself that is not a loop: a POST answered by a 303 (or
/// 301/302) to the same URL, which fetches the stream with a GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_redirected_to_itself_by_303_opens() {
    let mock = Mock::start(vec![
        Script::new().head(303, &[("Location", "")]),
        Script::sse_hold("data: got it\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/s")
        .method(reqwest::Method::POST)
        .body("subscribe")
        .build();
    assert_eq!(expect_open(&mut es).await, mock.url("/s"));
    expect_data(&mut es, "got it", "").await;
    let (first, second) = (mock.request(0).await, mock.request(1).await);
    assert_eq!(
        (first.method.as_str(), first.body.as_slice()),
        ("POST", &b"subscribe"[..])
    );
    assert_eq!(
        (second.method.as_str(), second.path.as_str()),
        ("GET", "/s")
    );
    assert!(second.body.is_empty());
}

/// "sends ID of last received event": the connection breaks, the reconnect sends `abc`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_sends_last_event_id() {
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk("id: abc\ndata: Hello\n\n")
            .sleep(50)
            .write(BREAK),
        Script::sse_hold(""),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "Hello", "abc").await;
    let e = expect_reconnecting(&mut es).await;
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    expect_open(&mut es).await;
    assert!(mock.request(0).await.lacks("last-event-id"));
    assert_eq!(mock.request(1).await.one("last-event-id"), b"abc");
}

/// "sends ID of last received event that had an ID if later events did not" — and keeps
/// sending it on the *second* reconnect, after a stream whose events had no id (the bug
/// that reqwest-eventsource and eventsource-client have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_sends_id_of_last_event_that_had_one() {
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk("id: abc\ndata: Hello\n\n")
            .chunk("data: World\n\n")
            .sleep(50)
            .write(BREAK),
        Script::new()
            .chunked_sse_head()
            .chunk("data: again\n\n")
            .sleep(50)
            .write(BREAK),
        Script::sse_hold("data: third\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "Hello", "abc").await;
    expect_data(&mut es, "World", "abc").await;
    expect_reopen_data(&mut es, "again", "abc").await;
    expect_reopen_data(&mut es, "third", "abc").await;
    for i in [1, 2] {
        assert_eq!(
            mock.request(i).await.one("last-event-id"),
            b"abc",
            "request {i}"
        );
    }
}

/// An explicit empty `id:` resets the id: the reconnect has no `Last-Event-Id` header at all
/// (not an empty one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_empty_id_sends_no_header() {
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk("id: abc\ndata: a\n\nid:\ndata: b\n\n")
            .sleep(50)
            .write(BREAK),
        Script::sse_hold(""),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "a", "abc").await;
    expect_data(&mut es, "b", "").await;
    expect_reopen(&mut es).await;
    let request = mock.request(1).await;
    assert!(request.lacks("last-event-id"), "{request:?}");
}

/// The event being received when the connection breaks is discarded and its `id: def` never
/// used; the new connection works normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_event_discarded_on_break() {
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk("id: abc\ndata: Hello\n\n")
            .sleep(50)
            .write("40\r\nid: def\ndata: partial"),
        Script::sse_hold("data: after\n\nid: ghi\ndata: next\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "Hello", "abc").await;
    expect_reopen_data(&mut es, "after", "abc").await;
    expect_data(&mut es, "next", "ghi").await;
    assert_eq!(mock.request(1).await.one("last-event-id"), b"abc");
    expect_silence(&mut es).await;
}

/// The same with a clean close in the middle of the event (close-delimited body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_event_discarded_on_clean_close() {
    let mock = Mock::start(vec![
        Script::sse("id: abc\ndata: Hello\n\nid: def\ndata: partial"),
        Script::sse_hold("data: after\n\n"),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, "Hello", "abc").await;
    expect_reopen_data(&mut es, "after", "abc").await;
    assert_eq!(mock.request(1).await.one("last-event-id"), b"abc");
}

/// A 5 MiB payload with a pattern that shows any lost, doubled or reordered byte.
fn big_payload() -> String {
    (0..5 << 20)
        .map(|i: usize| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// A 5 MB single-line event sent in one write arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_event_one_chunk() {
    let payload = big_payload();
    let mock = Mock::start(vec![Script::sse_hold(format!("data: {payload}\n\n"))]).await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    let m = expect_message(&mut es).await;
    assert_eq!(m.data.len(), payload.len());
    assert!(m.data == payload, "the payload was altered");
}

/// A 5 MB single-line event split in two chunks (of a chunked body, sent apart) arrives
/// intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_event_two_chunks() {
    let payload = big_payload();
    let event = format!("data: {payload}\n\n");
    let (first, second) = event.split_at(event.len() / 2 + 7);
    let mock = Mock::start(vec![
        Script::new()
            .chunked_sse_head()
            .chunk(first)
            .sleep(50)
            .chunk(second)
            .hold(),
    ])
    .await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    let m = expect_message(&mut es).await;
    assert_eq!(m.data.len(), payload.len());
    assert!(m.data == payload, "the payload was altered");
}

/// 100 events in one chunk arrive complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_events_in_one_chunk() {
    let body: String = (0..100)
        .map(|i| format!("id: {i}\nevent: e{i}\ndata: payload {i}\n\n"))
        .collect();
    let mock = Mock::start(vec![Script::new().chunked_sse_head().chunk(body).hold()]).await;
    let mut es = fast(&mock, "/").build();
    expect_open(&mut es).await;
    for i in 0..100 {
        let m = expect_message(&mut es).await;
        assert_eq!(
            (m.event_type, m.data, m.last_event_id),
            (format!("e{i}"), format!("payload {i}"), i.to_string())
        );
    }
    expect_silence(&mut es).await;
}
