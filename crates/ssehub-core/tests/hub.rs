//! The resume invariants (ARCHITECTURE.md, "Resume invariants") and fan-out rules, checked
//! on `Hub` directly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use ssehub_core::{
    CloseReason, Hub, HubConfig, MemoryStore, NewEvent, Pattern, Resume, Retention, Selector,
    Subscription, Topic,
};
use ssehub_wire::{Frame, MessageEvent, Parser};

fn hub_with(retention: Retention, config: HubConfig) -> Hub {
    Hub::new(Arc::new(MemoryStore::new(retention)), config)
}

fn hub() -> Hub {
    hub_with(Retention::default(), HubConfig::default())
}

fn sel(patterns: &[&str]) -> Selector {
    Selector::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect()).unwrap()
}

fn ev(topic: &str, data: &str) -> NewEvent {
    NewEvent::new(Topic::new(topic).unwrap(), data)
}

async fn publish(hub: &Hub, topic: &str, data: &str) -> String {
    hub.publish(vec![ev(topic, data)]).await.unwrap()[0].to_string()
}

/// Reads events from a subscription until `n` arrived (or 5 s passed).
struct Reader {
    sub: Subscription,
    parser: Parser,
}

impl Reader {
    fn new(sub: Subscription) -> Self {
        Reader {
            sub,
            parser: Parser::new(),
        }
    }

    async fn take(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.sub.next())
                .await
                .expect("events arrive in time")
                .expect("stream still open");
            self.parser.feed(&chunk);
            while let Some(frame) = self.parser.next() {
                if let Frame::Event(e) = frame.unwrap() {
                    out.push(e);
                }
            }
        }
        out
    }

    /// Asserts nothing more arrives for a moment.
    async fn nothing_more(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(100), self.sub.next()).await;
        assert!(next.is_err(), "unexpected bytes: {next:?}");
    }
}

fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[tokio::test]
async fn live_subscriber_gets_events_in_order_with_ids() {
    let hub = hub();
    let mut reader = Reader::new(hub.subscribe(sel(&["a"]), &Resume::Live).unwrap());
    let id1 = publish(&hub, "a", "1").await;
    let id2 = publish(&hub, "a", "2").await;
    publish(&hub, "b", "other topic").await;
    let got = reader.take(2).await;
    assert_eq!(data(&got), ["1", "2"]);
    assert_eq!(got[0].last_event_id, id1);
    assert_eq!(got[1].last_event_id, id2);
    reader.nothing_more().await;
}

/// Invariant 2 (ARCHITECTURE.md): resuming from X gives exactly the matching events after X, then
/// live, with nothing lost in between (publishes race with the subscribe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_then_live_without_gap_or_duplicate() {
    let hub = hub();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(publish(&hub, "t", &i.to_string()).await);
    }
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in 100..600 {
                publish(&hub, "t", &i.to_string()).await;
            }
        })
    };
    tokio::task::yield_now().await;
    let mut reader = Reader::new(
        hub.subscribe(sel(&["t"]), &Resume::After(ids[49].clone()))
            .unwrap(),
    );
    let got = reader.take(550).await;
    publisher.await.unwrap();
    let want: Vec<String> = (50..600).map(|i| i.to_string()).collect();
    assert_eq!(data(&got), want);
    reader.nothing_more().await;
}

/// Invariant 1 (ARCHITECTURE.md) with overlapping patterns: an event matching two patterns of one
/// subscriber arrives once.
#[tokio::test]
async fn overlapping_patterns_deliver_once() {
    let hub = hub();
    let mut reader = Reader::new(
        hub.subscribe(sel(&["a/b", "a/*", "**"]), &Resume::Live)
            .unwrap(),
    );
    publish(&hub, "a/b", "x").await;
    publish(&hub, "z", "y").await;
    assert_eq!(data(&reader.take(2).await), ["x", "y"]);
    reader.nothing_more().await;
}

#[tokio::test]
async fn one_id_resumes_a_multi_topic_subscription() {
    let hub = hub();
    let first = publish(&hub, "a", "a1").await;
    publish(&hub, "b", "b1").await;
    publish(&hub, "c", "c1").await;
    publish(&hub, "a", "a2").await;
    let mut reader = Reader::new(
        hub.subscribe(sel(&["a", "b"]), &Resume::After(first))
            .unwrap(),
    );
    assert_eq!(data(&reader.take(2).await), ["b1", "a2"]);
    publish(&hub, "b", "b2").await;
    assert_eq!(data(&reader.take(1).await), ["b2"]);
}

#[tokio::test]
async fn earliest_replays_everything_retained() {
    let hub = hub();
    for i in 0..5 {
        publish(&hub, "e", &i.to_string()).await;
    }
    let mut reader = Reader::new(hub.subscribe(sel(&["e"]), &Resume::Earliest).unwrap());
    assert_eq!(data(&reader.take(5).await), ["0", "1", "2", "3", "4"]);
}

/// Invariant 3 (ARCHITECTURE.md): an expired or unknown id gets the gap notice before anything
/// else.
#[tokio::test]
async fn expired_and_unknown_ids_get_the_gap_event_first() {
    let hub = hub_with(
        Retention {
            max_events: 3,
            max_bytes: usize::MAX,
        },
        HubConfig::default(),
    );
    let first = publish(&hub, "g", "0").await;
    for i in 1..6 {
        publish(&hub, "g", &i.to_string()).await;
    }
    for (resume, reason) in [
        (first.clone(), "expired"),
        ("00000000-1".to_string(), "unknown"),
        ("not-an-id".to_string(), "unknown"),
    ] {
        let mut reader = Reader::new(
            hub.subscribe(sel(&["g"]), &Resume::After(resume.clone()))
                .unwrap(),
        );
        let got = reader.take(4).await;
        assert_eq!(got[0].event_type, "ssehub-gap");
        let gap: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(gap["reason"], reason);
        assert_eq!(gap["requested"], resume.as_str());
        assert_eq!(gap["oldest"], got[1].last_event_id.as_str());
        assert_eq!(got[0].last_event_id, "", "the gap event carries no id");
        assert_eq!(data(&got[1..]), ["3", "4", "5"]);
    }
}

/// Retention that overtakes a slow replay is reported with a gap notice where the events went
/// missing, never skipped silently.
#[tokio::test]
async fn retention_overtaking_a_replay_sends_a_gap_notice() {
    let hub = hub_with(
        Retention {
            max_events: 5,
            max_bytes: usize::MAX,
        },
        HubConfig {
            replay_page_events: 1,
            ..HubConfig::default()
        },
    );
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(publish(&hub, "r", &i.to_string()).await);
    }
    let mut reader = Reader::new(hub.subscribe(sel(&["r"]), &Resume::Earliest).unwrap());
    assert_eq!(
        data(&reader.take(1).await),
        ["0"],
        "the first page of the replay"
    );
    for i in 5..10 {
        ids.push(publish(&hub, "r", &i.to_string()).await);
    }
    let got = reader.take(6).await;
    assert_eq!(got[0].event_type, "ssehub-gap", "got {got:?}");
    let gap: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
    assert_eq!(gap["reason"], "expired");
    assert_eq!(gap["requested"], ids[0].as_str(), "where the replay was");
    assert_eq!(gap["oldest"], ids[5].as_str());
    assert_eq!(data(&got[1..]), ["5", "6", "7", "8", "9"]);
    reader.nothing_more().await;
    assert_eq!(
        hub.stats().gaps.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// Invariant 4 (ARCHITECTURE.md): a subscriber that stops reading is disconnected without slowing
/// anyone; the others get everything; it then resumes with nothing lost.
#[tokio::test]
async fn slow_subscriber_is_cut_off_and_resumes() {
    let hub = hub_with(
        Retention::default(),
        HubConfig {
            subscriber_buffer_bytes: 4096,
            ..HubConfig::default()
        },
    );
    let mut slow = Reader::new(hub.subscribe(sel(&["s"]), &Resume::Live).unwrap());
    let first = slow.take(0).await; // registered, reads nothing
    assert!(first.is_empty());
    let mut fast = Reader::new(hub.subscribe(sel(&["s"]), &Resume::Live).unwrap());
    let payload = "x".repeat(100);
    let mut got_fast = Vec::new();
    for i in 0..200 {
        publish(&hub, "s", &format!("{i}{payload}")).await;
        got_fast.extend(fast.take(1).await);
    }
    assert_eq!(got_fast.len(), 200);
    assert_eq!(slow.sub.close_reason(), Some(CloseReason::Overflow));
    assert_eq!(
        hub.stats()
            .slow_disconnects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Its stream ends (nothing more is sent) ...
    assert_eq!(slow.sub.next().await, None::<Bytes>);
    // ... and a resume from its last id (none received here: from the start) loses nothing.
    let mut again = Reader::new(hub.subscribe(sel(&["s"]), &Resume::Earliest).unwrap());
    assert_eq!(again.take(200).await.len(), 200);
}

#[tokio::test]
async fn idle_topics_cost_nothing() {
    let hub = hub();
    let sub = hub.subscribe(sel(&["x/1", "x/*"]), &Resume::Live).unwrap();
    assert_eq!(hub.active_topics(), 2);
    drop(sub);
    assert_eq!(hub.active_topics(), 0);
    assert_eq!(
        hub.stats()
            .subscriptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn shutdown_flushes_and_ends_streams() {
    let hub = hub();
    let mut sub = hub.subscribe(sel(&["q"]), &Resume::Live).unwrap();
    publish(&hub, "q", "last").await;
    hub.shutdown();
    let chunk = sub.next().await.unwrap();
    assert!(String::from_utf8_lossy(&chunk).contains("data: last"));
    assert_eq!(sub.next().await, None);
    assert!(hub.subscribe(sel(&["q"]), &Resume::Live).is_err());
}

#[tokio::test(start_paused = true)]
async fn idle_streams_get_heartbeats() {
    let hub = hub_with(
        Retention::default(),
        HubConfig {
            heartbeat: Some(Duration::from_secs(15)),
            ..HubConfig::default()
        },
    );
    let mut sub = hub.subscribe(sel(&["h"]), &Resume::Live).unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(16), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&chunk[..], ssehub_wire::KEEP_ALIVE);
}

#[tokio::test]
async fn batch_publish_keeps_order_and_ids() {
    let hub = hub();
    let mut reader = Reader::new(hub.subscribe(sel(&["p/**"]), &Resume::Live).unwrap());
    let ids = hub
        .publish(vec![ev("p/1", "a"), ev("p/2", "b"), ev("p/1", "c")])
        .await
        .unwrap();
    let got = reader.take(3).await;
    assert_eq!(data(&got), ["a", "b", "c"]);
    for (e, id) in got.iter().zip(&ids) {
        assert_eq!(e.last_event_id, id.to_string());
    }
    assert!(ids.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// Private events reach only subscribers whose rights match one of their topics, live and in
/// replay.
#[tokio::test]
async fn private_events_need_matching_rights() {
    let hub = hub();
    let mut anyone = Reader::new(hub.subscribe(sel(&["u/**"]), &Resume::Live).unwrap());
    let mut alice = Reader::new(
        hub.subscribe_with_access(sel(&["u/**"]), &Resume::Live, Some(sel(&["u/alice/*"])))
            .unwrap(),
    );
    let mut secret = ev("u/alice/inbox", "for alice");
    secret.private = true;
    let mut other = ev("u/bob/inbox", "for bob");
    other.private = true;
    hub.publish(vec![secret, other, ev("u/all", "public")])
        .await
        .unwrap();
    assert_eq!(data(&alice.take(2).await), ["for alice", "public"]);
    assert_eq!(data(&anyone.take(1).await), ["public"]);
    anyone.nothing_more().await;
    let mut replay = Reader::new(
        hub.subscribe_with_access(sel(&["u/**"]), &Resume::Earliest, Some(sel(&["u/bob/*"])))
            .unwrap(),
    );
    assert_eq!(data(&replay.take(2).await), ["for bob", "public"]);
}

/// Replay is bounded in bytes, not only in events: with the default of 256 events a page,
/// each chunk a replay hands to the connection holds at most `replay_page_bytes` of events
/// (or one larger event), and the chunks are still every event, in order, once, followed by
/// the live ones.
#[tokio::test]
async fn replay_pages_are_bounded_in_bytes() {
    const PAGE: usize = 8 << 10;
    let hub = hub_with(
        Retention::default(),
        HubConfig {
            replay_page_bytes: PAGE,
            ..HubConfig::default()
        },
    );
    for i in 0..40 {
        // Mostly 3 KiB events, and a few larger than a page.
        let size = if i % 10 == 3 { 3 * PAGE } else { 3 << 10 };
        publish(&hub, "big", &format!("{i} {}", "x".repeat(size))).await;
    }
    let mut sub = hub.subscribe(sel(&["big"]), &Resume::Earliest).unwrap();
    let mut parser = Parser::new();
    let mut got = Vec::new();
    while got.len() < 40 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("the replay goes on")
            .expect("the stream is open");
        parser.feed(&chunk);
        let before = got.len();
        while let Some(frame) = parser.next() {
            if let Frame::Event(e) = frame.unwrap() {
                got.push(e);
            }
        }
        assert!(
            chunk.len() <= PAGE || got.len() - before == 1,
            "a chunk of {} bytes holds {} events",
            chunk.len(),
            got.len() - before
        );
    }
    let first: Vec<String> = got
        .iter()
        .map(|e| e.data.split(' ').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(first, expected, "every event, in order, once");
    let stats = hub.stats();
    let pages = stats
        .replay_pages
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(pages >= 15, "{pages} pages for 40 events of 3 KiB and more");
    publish(&hub, "big", "live").await;
    let mut reader = Reader { sub, parser };
    assert_eq!(data(&reader.take(1).await), ["live"]);
}

/// Live-only events reach the matching live subscribers once each (even through two
/// patterns), with no id, and are never stored: a replay does not see them and the log does
/// not move. Private ones reach only subscribers with rights.
#[tokio::test]
async fn live_only_events_are_delivered_once_and_never_stored() {
    let hub = hub();
    publish(&hub, "l/x", "stored").await;
    let mut both = Reader::new(hub.subscribe(sel(&["l/*", "l/**"]), &Resume::Live).unwrap());
    let mut other = Reader::new(hub.subscribe(sel(&["m"]), &Resume::Live).unwrap());
    let mut private = ev("l/y", "secret");
    private.private = true;
    hub.publish_live(&[ev("l/y", "live"), private]);
    assert_eq!(hub.store().bounds().last, 1, "nothing stored");
    let got = both.take(1).await;
    assert_eq!(data(&got), ["live"]);
    assert_eq!(got[0].last_event_id, "", "no id");
    publish(&hub, "l/x", "next").await;
    assert_eq!(
        data(&both.take(1).await),
        ["next"],
        "once, and no private event"
    );
    other.nothing_more().await;
    let mut replay = Reader::new(hub.subscribe(sel(&["l/*"]), &Resume::Earliest).unwrap());
    assert_eq!(data(&replay.take(2).await), ["stored", "next"]);
    replay.nothing_more().await;
}

/// A publisher id resumes from its event's position, after resolution through the store's
/// index, even when the event is stored but not yet fanned out (the index has it first): the
/// subscription skips it live instead of taking the id for unknown. An id the index does not
/// hold stays unknown, with the gap notice naming it.
#[tokio::test]
async fn a_publisher_id_stored_but_not_yet_fanned_out_resumes_after_it() {
    let store = Arc::new(MemoryStore::new(Retention::default()));
    let hub = Hub::new(store.clone(), HubConfig::default());
    // Stored behind the hub's back: in the index, never fanned out (the hub's commit task
    // between its append and its fan-out).
    let early = ev("t", "early").with_id("rev-1", 256).unwrap();
    ssehub_core::Store::append(&*store, vec![early])
        .await
        .unwrap();
    let resume = hub.resolve(Resume::After("rev-1".into())).await.unwrap();
    assert_eq!(
        resume,
        Resume::Published {
            id: "rev-1".into(),
            seq: 1
        }
    );
    let sub = hub.subscribe(sel(&["t"]), &resume).unwrap();
    assert!(sub.gap().is_none(), "{:?}", sub.gap());
    let mut reader = Reader::new(sub);
    let later = hub
        .publish(vec![ev("t", "later").with_id("rev-2", 256).unwrap()])
        .await
        .unwrap();
    assert_eq!(later[0].seq, 2);
    let got = reader.take(1).await;
    assert_eq!(
        (data(&got), got[0].last_event_id.as_str()),
        (vec!["later"], "rev-2")
    );

    let unknown = hub.resolve(Resume::After("rev-9".into())).await.unwrap();
    assert_eq!(unknown, Resume::After("rev-9".into()));
    let sub = hub.subscribe(sel(&["t"]), &unknown).unwrap();
    let gap = sub.gap().expect("an unknown publisher id gets the notice");
    assert!(format!("{gap:?}").contains("rev-9"), "{gap:?}");
}
