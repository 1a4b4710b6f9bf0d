//! Live-only events between two hubs over one Redis (`Store::live_relay`): each hub's reach
//! the other's subscribers once, never come back to their own, and cross again once Redis
//! is back after a restart.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt as _;
use ssehub_cluster::testing::RedisServer;
use ssehub_core::{Hub, NewEvent, Pattern, Resume, Selector, Subscription, Topic};

use crate::hub;

fn subscribe(hub: &Hub, pattern: &str) -> Subscription {
    let selector = Selector::new(vec![Pattern::new(pattern).unwrap()]).unwrap();
    hub.subscribe(selector, &Resume::Live).unwrap()
}

fn event(topic: &str, data: &str) -> NewEvent {
    NewEvent::new(Topic::new(topic).unwrap(), data)
}

/// The data of the events `sub` receives within `wait`.
async fn received(sub: &mut Subscription, wait: Duration) -> Vec<String> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, sub.next()).await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// Publishes probes on `from` (to `probe/<name>`) until `to` (subscribed to it) receives
/// one: its relay is subscribed.
async fn relay_is_up(from: &Hub, name: &str, to: &mut Subscription) {
    for i in 0..100 {
        from.publish_live(&[event(&format!("probe/{name}"), &i.to_string())]);
        if !received(to, Duration::from_millis(100)).await.is_empty() {
            return;
        }
    }
    panic!("the live relay did not come up within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_only_events_reach_the_other_hub_once_and_never_come_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (
        hub(&redis.url(), "relay", 0).await,
        hub(&redis.url(), "relay", 0).await,
    );
    // Each hub listens to the other's probes only.
    let (mut probe_a, mut probe_b) = (subscribe(&a, "probe/b"), subscribe(&b, "probe/a"));
    relay_is_up(&a, "a", &mut probe_b).await;
    relay_is_up(&b, "b", &mut probe_a).await;
    let (mut on_a, mut on_b) = (subscribe(&a, "l/*"), subscribe(&b, "l/*"));

    a.publish_live(&[event("l/1", "a1"), event("l/2", "a2")]);
    b.publish_live(&[event("l/1", "b1")]);
    let quiet = Duration::from_millis(500);
    let (mut got_a, mut got_b) = (
        received(&mut on_a, quiet).await,
        received(&mut on_b, quiet).await,
    );
    // Each hub's own first (fanned out at once), the other's after; each exactly once.
    assert_eq!(got_a, ["a1", "a2", "b1"]);
    got_b.sort();
    assert_eq!(got_b, ["a1", "a2", "b1"]);
    let sent = |hub: &Hub| hub.relay_stats().unwrap().sent.load(Ordering::Relaxed);
    let received_by = |hub: &Hub| hub.relay_stats().unwrap().received.load(Ordering::Relaxed);
    assert!(sent(&a) >= 2 && received_by(&b) >= 2);
    assert_eq!(
        a.relay_stats().unwrap().dropped.load(Ordering::Relaxed),
        0,
        "nothing dropped while Redis is up"
    );

    // Redis restarts: the relay subscribes again.
    redis.kill();
    a.publish_live(&[event("l/1", "lost")]);
    redis.start_again();
    relay_is_up(&a, "a", &mut probe_b).await;
    a.publish_live(&[event("l/1", "after")]);
    got_a = received(&mut on_a, quiet).await;
    assert_eq!(got_a, ["lost", "after"], "a hub's own always reach it");
    let got_b = received(&mut on_b, quiet).await;
    assert_eq!(
        got_b.last().map(String::as_str),
        Some("after"),
        "relayed again once Redis is back: {got_b:?}"
    );
}
