//! [`Builder::resumable`](ssehub_client::Builder::resumable): one POST, then resumes from the
//! relay topic after a cut, until `ssehub-end`.

use futures_util::StreamExt;
use ssehub_client::Event;

use crate::mock::{LIMIT, Mock, Script, fast};

/// A relay's answer: the topic header, two events, then the connection breaks mid-chunk.
fn cut_answer() -> Script {
    Script::new()
        .head(
            200,
            &[
                ("Content-Type", "text/event-stream"),
                ("Transfer-Encoding", "chunked"),
                ("SSEHub-Topic", "relay/abc"),
            ],
        )
        .chunk("id: h-1\nevent: token\ndata: t0\n\n")
        .chunk("id: h-2\nevent: token\ndata: t1\n\nid: h-3\nevent: tok")
        .sleep(50)
        .write("ff\r\nbroken")
}

/// Collects the messages until the stream ends.
async fn messages(stream: &mut ssehub_client::ResumablePost) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    while let Some(item) = tokio::time::timeout(LIMIT, stream.next()).await.unwrap() {
        if let Ok(Event::Message(m)) = item {
            out.push((m.event_type, m.data, m.last_event_id));
        }
    }
    out
}

#[tokio::test]
async fn a_cut_answer_resumes_from_the_topic_after_the_last_whole_event() {
    let mock = Mock::start(vec![
        cut_answer(),
        Script::sse(
            "id: h-3\nevent: token\ndata: t2\n\nid: h-4\nevent: ssehub-end\ndata: {\"reason\":\"done\"}\n\n",
        )
        .hold(),
    ])
    .await;
    let mut stream = fast(&mock, "/ai/chat").post("prompt").resumable();
    let got = messages(&mut stream).await;
    let data: Vec<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(data, ["t0", "t1", "t2", "{\"reason\":\"done\"}"]);
    assert_eq!(got.last().unwrap().0, "ssehub-end");
    let post = mock.request(0).await;
    assert_eq!(
        (post.method.as_str(), post.body.as_slice()),
        ("POST", &b"prompt"[..])
    );
    let resume = mock.request(1).await;
    assert_eq!(resume.method, "GET", "never POSTed again");
    assert_eq!(resume.path, "/topics/relay/abc");
    // The event cut off mid-way (h-3) does not count.
    assert_eq!(resume.text("last-event-id"), "h-2");
    // Ended at ssehub-end: no third connection, although the second was held open.
    mock.assert_connections_stay(2).await;
}

#[tokio::test]
async fn an_answer_cut_before_any_event_resumes_from_the_earliest() {
    let mock = Mock::start(vec![
        Script::new().head(
            200,
            &[
                ("Content-Type", "text/event-stream"),
                ("SSEHub-Topic", "relay/abc"),
            ],
        ),
        Script::sse("id: h-1\nevent: ssehub-end\ndata: {\"reason\":\"timeout\"}\n\n").hold(),
    ])
    .await;
    let mut stream = fast(&mock, "/ai").post("p").resumable();
    let got = messages(&mut stream).await;
    assert_eq!(got.len(), 1);
    assert_eq!(mock.request(1).await.text("last-event-id"), "earliest");
}

#[tokio::test]
async fn an_answer_without_a_topic_is_not_resumed() {
    let mock = Mock::start(vec![Script::sse("data: a\n\n")]).await;
    let mut stream = fast(&mock, "/").post("p").resumable();
    let got = messages(&mut stream).await;
    assert_eq!(got.len(), 1);
    mock.assert_connections_stay(1).await;
}
