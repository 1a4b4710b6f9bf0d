//! A hub over a store that relays live-only events (`Store::live_relay`), with a fake store
//! whose relay the test plays the other hubs of: `Hub::publish_live` fans out here and hands
//! the events to the relay; what the relay brings from the others is fanned out here, once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ssehub_core::{
    Bounds, BoxFuture, Hub, HubConfig, LiveOutbox, LiveRelay, LogId, MemoryStore, NewEvent,
    Pattern, ReadPage, RelayStats, Resume, Retention, Selector, Store, StoreError, StoredEvent,
    Topic,
};
use tokio::sync::mpsc;

/// What the hub handed to the relay.
#[derive(Default)]
struct Outbox(Mutex<Vec<NewEvent>>);

impl LiveOutbox for Outbox {
    fn send(&self, events: &[NewEvent]) {
        self.0.lock().unwrap().extend_from_slice(events);
    }
}

/// A memory store with a relay the test drives.
struct Relaying {
    store: MemoryStore,
    relay: Mutex<Option<LiveRelay>>,
}

impl Store for Relaying {
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
        self.store.append(events)
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

    fn live_relay(&self) -> Option<LiveRelay> {
        self.relay.lock().unwrap().take()
    }
}

async fn next(sub: &mut ssehub_core::Subscription) -> bytes::Bytes {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("in time")
        .expect("the stream goes on")
}

#[tokio::test]
async fn live_only_events_go_to_the_relay_and_come_from_it() {
    let outbox = Arc::new(Outbox::default());
    let (others, inbox) = mpsc::channel(4);
    let store = Relaying {
        store: MemoryStore::new(Retention::default()),
        relay: Mutex::new(Some(LiveRelay {
            outbox: outbox.clone(),
            inbox,
            stats: Arc::new(RelayStats::default()),
        })),
    };
    let hub = Hub::new(Arc::new(store), HubConfig::default());
    assert!(hub.relay_stats().is_some());
    let selector = Selector::new(vec![Pattern::new("r").unwrap()]).unwrap();
    let mut sub = hub.subscribe(selector, &Resume::Live).unwrap();

    // This hub's: fanned out here, and handed to the relay.
    let mine = NewEvent::new(Topic::new("r").unwrap(), "mine");
    hub.publish_live(std::slice::from_ref(&mine));
    assert_eq!(&next(&mut sub).await[..], b"data: mine\n\n");
    assert_eq!(*outbox.0.lock().unwrap(), [mine]);

    // Another hub's: fanned out here, and not handed back to the relay.
    let theirs = NewEvent::new(Topic::new("r").unwrap(), "theirs");
    others.send(vec![theirs]).await.unwrap();
    assert_eq!(&next(&mut sub).await[..], b"data: theirs\n\n");
    assert_eq!(outbox.0.lock().unwrap().len(), 1);
    assert_eq!(
        hub.stats()
            .live_only
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_store_of_one_hub_relays_nothing() {
    let hub = Hub::new(
        Arc::new(MemoryStore::new(Retention::default())),
        HubConfig::default(),
    );
    assert!(hub.relay_stats().is_none());
}
