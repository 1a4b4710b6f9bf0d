//! The store conformance suite of `ssehub-core` (with its model check), against the Redis
//! store: each fresh store is a new cluster name on one redis-server, a restart is a new
//! `RedisStore` on the same name.

use std::sync::Arc;
use std::time::Duration;

use ssehub_cluster::testing::RedisServer;
use ssehub_cluster::{ClusterOptions, ClusterRetention, RedisStore};
use ssehub_core::Store;
use ssehub_core::testing::{StoreFactory, run};

struct Redis {
    url: String,
    made: usize,
    current: Option<(RedisStore, ClusterOptions)>,
}

/// Runs `work` to completion from inside the suite's runtime (the factory is synchronous).
fn wait<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
}

impl StoreFactory for Redis {
    fn fresh(&mut self, max_events: usize) -> Arc<dyn Store> {
        self.made += 1;
        let options = ClusterOptions {
            url: self.url.clone(),
            name: format!("conformance-{}", self.made),
            retention: ClusterRetention {
                max_events: Some(max_events as u64),
                max_bytes: None,
                max_age: None,
                // The suite enforces retention itself, at the moments it chooses.
                sweep_every: Duration::from_secs(3600),
                ..ClusterRetention::default()
            },
            min_replicas: 0,
            replica_timeout: Duration::from_secs(1),
        };
        let store = wait(RedisStore::open(options.clone())).expect("open");
        self.current = Some((store.clone(), options));
        Arc::new(store)
    }

    fn durable(&self) -> bool {
        true
    }

    fn reopen(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        let (current, options) = self.current.take().expect("a store");
        drop((current, store));
        let store = wait(RedisStore::open(options.clone())).expect("reopen");
        self.current = Some((store.clone(), options));
        Arc::new(store)
    }

    fn enforce_retention(&mut self, _store: &Arc<dyn Store>) {
        let (store, _) = self.current.as_ref().expect("a store");
        wait(store.sweep()).expect("sweep");
    }
}

#[test]
fn redis_store_conformance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    run(&mut Redis {
        url: redis.url(),
        made: 0,
        current: None,
    });
}
