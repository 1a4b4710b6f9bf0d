//! Two hubs over one Redis: every event, published on either, reaches the subscribers of both
//! once, in one order, with the id its publisher was answered (the ordered feed).

use std::time::Duration;

use futures_util::StreamExt as _;
use ssehub_cluster::testing::RedisServer;
use ssehub_core::{NewEvent, Pattern, Resume, Selector, Subscription, Topic};

use crate::hub;

/// The ids of the next `n` events of `sub`.
async fn ids(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut text = String::new();
    let mut ids = Vec::new();
    while ids.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("events in time")
            .expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        ids = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(str::to_string)
            .collect();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_deliver_every_event_once_in_one_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (
        hub(&redis.url(), "feed", 0).await,
        hub(&redis.url(), "feed", 0).await,
    );
    let selector = || Selector::new(vec![Pattern::new("t/*").unwrap()]).unwrap();
    let mut on_a = a.subscribe(selector(), &Resume::Live).unwrap();
    let mut on_b = b.subscribe(selector(), &Resume::Live).unwrap();
    let publishes = (0..40).map(|i| {
        let hub = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            let event = NewEvent::new(Topic::new(&format!("t/{}", i % 3)).unwrap(), "x");
            hub.publish(vec![event]).await.expect("publish")[0].to_string()
        }
    });
    let mut answered = futures_util::future::join_all(publishes).await;
    let got_a = ids(&mut on_a, 40).await;
    let got_b = ids(&mut on_b, 40).await;
    assert_eq!(got_a, got_b, "one order on both hubs");
    answered.sort_by_key(|id| id.split_once('-').unwrap().1.parse::<u64>().unwrap());
    assert_eq!(
        got_a, answered,
        "every answered id, once, in sequence order"
    );

    // A client resumes on B with an id that A answered.
    let resumed = b
        .subscribe(selector(), &Resume::After(got_a[9].clone()))
        .unwrap();
    let mut resumed = resumed;
    assert_eq!(ids(&mut resumed, 30).await, got_a[10..]);
}
