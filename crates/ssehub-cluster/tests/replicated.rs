//! `min_replicas`: a node delivers only events that replicas have, so that a failover cannot
//! hand a delivered event's id to another event (crate doc of `replicated.rs`).

use std::time::Duration;

use futures_util::StreamExt as _;
use ssehub_cluster::testing::RedisServer;
use ssehub_core::{NewEvent, Pattern, Resume, Selector, Subscription, Topic};

use crate::hub;

fn event(data: &str) -> Vec<NewEvent> {
    vec![NewEvent::new(Topic::new("r").unwrap(), data)]
}

fn selector() -> Selector {
    Selector::new(vec![Pattern::new("r").unwrap()]).unwrap()
}

/// A subscription's events as `(id, data)`, one at a time (a chunk may hold several).
struct Events {
    sub: Subscription,
    ready: std::collections::VecDeque<(String, String)>,
}

impl Events {
    /// The next event, or `None` when none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, String)> {
        if self.ready.is_empty() {
            let chunk = tokio::time::timeout(wait, self.sub.next()).await.ok()?;
            let text = String::from_utf8(chunk.expect("the stream goes on").to_vec()).unwrap();
            for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_string)
                        .unwrap_or_default()
                };
                self.ready.push_back((field("id: "), field("data: ")));
            }
        }
        self.ready.pop_front()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_no_replica_has_is_not_delivered_until_one_has_it() {
    let Some(primary) = RedisServer::start() else {
        return;
    };
    let replica = RedisServer::start_replica_of(&primary);
    let a = hub(&primary.url(), "replicated", 1).await;
    let mut sub = Events {
        sub: a.subscribe(selector(), &Resume::Live).unwrap(),
        ready: Default::default(),
    };
    // The replica's first sync may take a moment.
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(ids) = a.publish(event("one")).await {
                return ids[0].to_string();
            }
        }
    })
    .await
    .expect("a publish is acknowledged once the replica has it");
    let mut got = sub.next(Duration::from_secs(10)).await.expect("one");
    // Failed attempts before the sync were confirmed by the sweep: skip to ours.
    while got.0 != first {
        got = sub.next(Duration::from_secs(10)).await.expect("one");
    }
    assert_eq!(got.1, "one");

    replica.pause();
    assert!(
        a.publish(event("two")).await.is_err(),
        "no replica acknowledges it: the publisher is refused"
    );
    // The primary has it, but no replica: no node may deliver it. (Without the watermark the
    // tail would hand it out at once; two sweeps and two blocking reads go by here.)
    assert_eq!(
        sub.next(Duration::from_millis(2500)).await,
        None,
        "an event no replica has is not delivered"
    );

    replica.resume();
    let (id, data) = sub
        .next(Duration::from_secs(10))
        .await
        .expect("once the replica has it, the sweep confirms it and it is delivered");
    assert_eq!(data, "two");
    let seq = |id: &str| id.rsplit_once('-').unwrap().1.parse::<u64>().unwrap();
    assert_eq!(seq(&id), seq(&first) + 1, "in order, right after the first");

    // And acknowledged publishes go on as before.
    let three = a.publish(event("three")).await.expect("acknowledged")[0].to_string();
    assert_eq!(
        sub.next(Duration::from_secs(10)).await,
        Some((three, "three".to_string()))
    );
}
