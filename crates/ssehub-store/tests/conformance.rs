//! The store conformance suite of `ssehub-core`, against the disk store (with restarts).

use std::sync::Arc;

use ssehub_core::Store;
use ssehub_core::testing::{StoreFactory, run};
use ssehub_store::{DiskOptions, DiskStore, Retention, RetentionLimits};

struct Disk {
    dirs: Vec<tempfile::TempDir>,
    current: Option<(DiskStore, std::path::PathBuf, DiskOptions)>,
}

impl StoreFactory for Disk {
    fn fresh(&mut self, max_events: usize) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        self.dirs.push(dir);
        let options = DiskOptions {
            retention: Retention {
                hub: RetentionLimits {
                    max_events: Some(max_events as u64),
                    ..RetentionLimits::default()
                },
                // The suite enforces retention itself, at the moments it chooses.
                sweep_every: std::time::Duration::from_secs(3600),
                ..Retention::default()
            },
            // A tiny cache, so reads exercise the disk path too.
            tail_cache_events: 3,
            ..DiskOptions::default()
        };
        let store = DiskStore::open(&path, options.clone()).unwrap();
        self.current = Some((store.clone(), path, options));
        Arc::new(store)
    }

    fn durable(&self) -> bool {
        true
    }

    fn reopen(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        let (current, path, options) = self.current.take().unwrap();
        drop(current);
        drop(store);
        // Background tasks hold the store only weakly; wait for in-flight ones to let go.
        let store = (0..200)
            .find_map(|_| match DiskStore::open(&path, options.clone()) {
                Ok(s) => Some(s),
                Err(ssehub_store::OpenError::InUse(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
                Err(e) => panic!("reopen failed: {e}"),
            })
            .expect("the store reopens");
        self.current = Some((store.clone(), path, options));
        Arc::new(store)
    }

    fn enforce_retention(&mut self, _store: &Arc<dyn Store>) {
        self.current.as_ref().unwrap().0.sweep().unwrap();
    }
}

#[test]
fn disk_store_conformance() {
    run(&mut Disk {
        dirs: Vec::new(),
        current: None,
    });
}
