//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use ssehub_core::testing::{StoreFactory, run};
use ssehub_core::{MemoryStore, Retention, Store};

struct Memory;

impl StoreFactory for Memory {
    fn fresh(&mut self, max_events: usize) -> Arc<dyn Store> {
        Arc::new(MemoryStore::new(Retention {
            max_events,
            max_bytes: usize::MAX,
        }))
    }

    fn durable(&self) -> bool {
        false
    }

    fn reopen(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        store
    }

    fn enforce_retention(&mut self, _store: &Arc<dyn Store>) {}
}

#[test]
fn memory_store_conformance() {
    run(&mut Memory);
}
