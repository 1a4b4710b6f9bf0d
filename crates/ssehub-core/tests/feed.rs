//! A hub over a shared store (`Store::ordered_feed`), with a fake shared store whose feed the
//! test drives: the hub fans out from the feed alone, answers once the feed has reached the
//! publisher's events, and ends live streams when the feed skips events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ssehub_core::{
    Bounds, BoxFuture, Hub, HubConfig, LogId, MemoryStore, NewEvent, OrderedFeed, Pattern,
    ReadPage, Resume, Retention, Selector, Store, StoreError, StoredEvent, Topic,
};
use tokio::sync::mpsc;

/// A memory store that keeps what it appended for the test to feed (or not) to the hub.
struct Shared {
    store: MemoryStore,
    feed: Mutex<Option<OrderedFeed>>,
    appended: Mutex<Vec<Arc<StoredEvent>>>,
}

impl Store for Shared {
    fn log_id(&self) -> LogId {
        self.store.log_id()
    }

    fn bounds(&self) -> Bounds {
        self.store.bounds()
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>> {
        Box::pin(async move {
            let stored = self.store.append(events).await?;
            self.appended.lock().unwrap().extend(stored.iter().cloned());
            Ok(stored)
        })
    }

    fn find_id(&self, id: &str) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        self.store.find_id(id)
    }

    fn read(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        self.store.read(after, until, selector, limit, max_bytes)
    }

    fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        self.store
            .snapshot(after, until, selector, limit, max_bytes)
    }

    fn ordered_feed(&self, _after: u64) -> Option<OrderedFeed> {
        self.feed.lock().unwrap().take()
    }
}

fn setup() -> (Hub, Arc<Shared>, mpsc::Sender<Vec<Arc<StoredEvent>>>) {
    let (tx, rx) = mpsc::channel(16);
    let store = Arc::new(Shared {
        store: MemoryStore::new(Retention::default()),
        feed: Mutex::new(Some(rx)),
        appended: Mutex::new(Vec::new()),
    });
    (Hub::new(store.clone(), HubConfig::default()), store, tx)
}

fn live(hub: &Hub) -> ssehub_core::Subscription {
    let selector = Selector::new(vec![Pattern::new("f").unwrap()]).unwrap();
    hub.subscribe(selector, &Resume::Live).unwrap()
}

fn publish(hub: &Hub, data: &str) -> tokio::task::JoinHandle<String> {
    let hub = hub.clone();
    let event = NewEvent::new(Topic::new("f").unwrap(), data);
    tokio::spawn(async move { hub.publish(vec![event]).await.unwrap()[0].to_string() })
}

/// Waits until the store has appended `n` events in all.
async fn appended(store: &Shared, n: usize) -> Vec<Arc<StoredEvent>> {
    for _ in 0..500 {
        let all = store.appended.lock().unwrap().clone();
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the hub did not append {n} events");
}

#[tokio::test]
async fn a_hub_over_a_shared_store_fans_out_from_its_feed_only() {
    let (hub, store, feed) = setup();
    let mut sub = live(&hub);
    let answer = publish(&hub, "one");
    let stored = appended(&store, 1).await;
    let quiet = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
    assert!(
        quiet.is_err(),
        "nothing is delivered before the feed has it"
    );
    assert!(!answer.is_finished(), "nor answered");
    feed.send(stored.clone()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, stored[0].encoded);
    assert_eq!(answer.await.unwrap(), stored[0].id.to_string());
}

#[tokio::test]
async fn a_feed_that_skips_events_ends_the_live_streams() {
    let (hub, store, feed) = setup();
    let mut sub = live(&hub);
    // Answered only after the feed gives up waiting: not awaited here.
    let answers = [publish(&hub, "1"), publish(&hub, "2")];
    let stored = appended(&store, 2).await;
    // The first event never comes through the feed (deleted before this hub read it).
    feed.send(vec![stored[1].clone()]).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("the stream ends at once");
    assert_eq!(end, None, "ended, not skipped silently");
    drop(answers);
}

/// The SSE text of the next chunks of `sub` until it holds `n` events.
async fn events(sub: &mut ssehub_core::Subscription, n: usize) -> String {
    let mut text = String::new();
    while text.matches("\n\n").count() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("in time")
            .expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

fn resume_after(hub: &Hub, id: String) -> ssehub_core::Subscription {
    let selector = Selector::new(vec![Pattern::new("f").unwrap()]).unwrap();
    hub.subscribe(selector, &Resume::After(id)).unwrap()
}

#[tokio::test]
async fn an_id_the_log_gave_but_the_feed_has_not_reached_resumes_exactly() {
    let (hub, store, feed) = setup();
    let answers = [publish(&hub, "1"), publish(&hub, "2"), publish(&hub, "3")];
    let stored = appended(&store, 3).await;
    // Another hub answered the second one; this hub's feed has reached none of them.
    let mut sub = resume_after(&hub, stored[1].id.to_string());
    feed.send(stored.clone()).await.unwrap();
    let text = events(&mut sub, 1).await;
    assert_eq!(text, String::from_utf8(stored[2].encoded.to_vec()).unwrap());
    drop(answers);
}

#[tokio::test]
async fn an_id_past_the_log_gets_the_gap_notice_and_the_history() {
    let (hub, store, feed) = setup();
    let first = publish(&hub, "1");
    feed.send(appended(&store, 1).await).await.unwrap();
    first.await.unwrap();
    // An id of this log that no hub has given (forged, far ahead).
    let forged = format!("{}-1000000", hub.store().log_id());
    let mut sub = resume_after(&hub, forged.clone());
    let text = events(&mut sub, 2).await;
    assert!(
        text.starts_with("event: ssehub-gap\n") && text.contains("\"reason\":\"unknown\""),
        "{text}"
    );
    assert!(text.ends_with("data: 1\n\n"), "then the history: {text}");
    // And live events after it, not skipped.
    let second = publish(&hub, "2");
    let stored = appended(&store, 2).await;
    feed.send(vec![stored[1].clone()]).await.unwrap();
    assert!(events(&mut sub, 1).await.contains("data: 2\n"));
    second.await.unwrap();
}
