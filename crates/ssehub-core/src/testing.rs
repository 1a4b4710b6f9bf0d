//! The store conformance suite: one set of checks every [`Store`] backend must pass, including
//! a proptest model check (random appends, reads from random ids, retention, restarts), and a
//! model check of a [`Hub`](crate::Hub) over the backend (concurrent publishes group-committed
//! through the store's own append, subscriptions opened before, during and after them, some
//! read by a model connection whose socket takes the fan-out's direct writes whole, in part
//! or not at all: the idle-writable fast path).
//!
//! Enabled by the `testing` feature; each backend crate runs it from its tests with a
//! [`StoreFactory`] of its own.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::{
    Hub, HubConfig, NewEvent, Pattern, PublishError, Resume, Selector, Store, StoreError,
    StoredEvent, Topic,
};

/// How the suite makes and remakes stores of one backend.
pub trait StoreFactory {
    /// A new, empty store that keeps at most `max_events` events.
    fn fresh(&mut self, max_events: usize) -> Arc<dyn Store>;
    /// Whether the backend keeps its history across restarts.
    fn durable(&self) -> bool;
    /// The same store after a restart: close `store` (this is its last handle), then open
    /// the same data. Backends that keep nothing across restarts return `store` itself.
    fn reopen(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store>;
    /// Brings retention up to date (stores that trim in the background do it now).
    fn enforce_retention(&mut self, store: &Arc<dyn Store>);
}

fn ev(topic: &str, data: &str) -> NewEvent {
    NewEvent::new(Topic::new(topic).expect("valid test topic"), data)
}

/// An event with a publisher id.
fn ev_id(topic: &str, data: &str, id: &str) -> NewEvent {
    ev(topic, data)
        .with_id(id, crate::DEFAULT_MAX_ID_BYTES)
        .expect("valid test id")
}

fn selector(patterns: &[&str]) -> Arc<Selector> {
    Arc::new(
        Selector::new(
            patterns
                .iter()
                .map(|p| Pattern::new(p).expect("valid test pattern"))
                .collect(),
        )
        .expect("non-empty"),
    )
}

/// Reads everything matching `selector` after `after`, page by page, as a subscriber would.
async fn read_all(
    store: &dyn Store,
    after: u64,
    selector: &Arc<Selector>,
    page: usize,
) -> Vec<Arc<StoredEvent>> {
    read_all_bounded(store, after, selector, page, usize::MAX).await
}

/// [`read_all`] with pages of at most `max_bytes` of encoded events (or one event).
async fn read_all_bounded(
    store: &dyn Store,
    after: u64,
    selector: &Arc<Selector>,
    page: usize,
    max_bytes: usize,
) -> Vec<Arc<StoredEvent>> {
    let until = store.bounds().last;
    let mut out = Vec::new();
    let mut at = after;
    while at < until {
        let got = store
            .read(at, until, selector.clone(), page, max_bytes)
            .await
            .expect("read");
        assert!(got.events.len() <= page, "a page respects its limit");
        let bytes: usize = got.events.iter().map(|e| e.encoded.len()).sum();
        assert!(
            got.events.len() <= 1 || bytes <= max_bytes,
            "a page of several events respects its byte bound ({bytes} > {max_bytes})"
        );
        assert!(
            got.scanned_to > at || !got.events.is_empty(),
            "a read makes progress"
        );
        if let Some(last) = got.events.last() {
            at = at.max(last.seq());
        }
        at = at.max(got.scanned_to);
        out.extend(got.events);
    }
    out
}

/// Runs every check against the factory's stores.
///
/// # Panics
///
/// On the first broken rule, with a message naming it.
pub fn run(factory: &mut dyn StoreFactory) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        basic_rules(factory).await;
        retention_keeps_a_suffix(factory).await;
        restart_keeps_ids(factory).await;
        publisher_ids(factory).await;
        publisher_ids_follow_retention(factory).await;
        binary_events(factory).await;
    });
    runtime.block_on(keys_and_snapshots(factory));
    model_check(factory, &runtime);
    keyed_model_check(factory, &runtime);
    hub_model_check(factory, &runtime);
}

async fn basic_rules(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(1000);
    assert_eq!(store.bounds().last, 0, "a new store is empty");
    assert_eq!(store.bounds().first, 1);
    let stored = store
        .append(vec![ev("a", "1"), ev("b/c", "2"), ev("a", "")])
        .await
        .expect("append");
    let seqs: Vec<u64> = stored.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, [1, 2, 3], "consecutive sequence numbers from 1");
    assert!(stored.iter().all(|e| e.id.log == store.log_id()));
    let more = store.append(vec![ev("a", "4")]).await.expect("append");
    assert_eq!(more[0].seq(), 4, "the sequence continues");
    assert_eq!(
        &more[0].encoded[..],
        format!("id: {}\ndata: 4\n\n", more[0].id).as_bytes(),
        "the stored encoding is the SSE event"
    );
    let all = read_all(&*store, 0, &selector(&["**"]), 2).await;
    assert_eq!(all.len(), 4);
    let only_a = read_all(&*store, 0, &selector(&["a"]), 1).await;
    let data: Vec<&str> = only_a.iter().map(|e| e.event.data.as_str()).collect();
    assert_eq!(
        data,
        ["1", "", "4"],
        "reads filter by selector and keep order"
    );
    let after_2 = read_all(&*store, 2, &selector(&["a", "b/*"]), 10).await;
    assert_eq!(after_2.iter().map(|e| e.seq()).collect::<Vec<_>>(), [3, 4]);
    let capped = store
        .read(0, 2, selector(&["**"]), 10, usize::MAX)
        .await
        .expect("read");
    assert_eq!(capped.events.len(), 2, "`until` bounds a read");
    assert_eq!(store.bounds().last, 4);
    page_bytes_bound_reads(factory).await;
}

/// Pages bounded in bytes: large events come one per page, small ones several, and the
/// pages together are still every matching event, in order, once — on the exact-topic path
/// and the scanning one.
async fn page_bytes_bound_reads(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(1000);
    let mut events = Vec::new();
    for i in 0..20 {
        let size = if i % 5 == 0 { 3000 } else { 100 };
        events.push(ev("p", &format!("{i}{}", "x".repeat(size))));
        events.push(ev("q", "other"));
    }
    store.append(events).await.expect("append");
    for patterns in [&["p"][..], &["p", "z/*"]] {
        let sel = selector(patterns);
        let all = read_all(&*store, 0, &sel, 1000).await;
        assert_eq!(all.len(), 20, "{patterns:?}");
        for max_bytes in [0, 500, 2000, 10_000] {
            let bounded = read_all_bounded(&*store, 0, &sel, 1000, max_bytes).await;
            let seqs = |v: &[Arc<StoredEvent>]| v.iter().map(|e| e.seq()).collect::<Vec<_>>();
            assert_eq!(
                seqs(&bounded),
                seqs(&all),
                "{patterns:?}, pages of {max_bytes} bytes"
            );
        }
    }
}

async fn retention_keeps_a_suffix(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(5);
    for i in 0..12 {
        store
            .append(vec![ev("r", &i.to_string())])
            .await
            .expect("append");
    }
    factory.enforce_retention(&store);
    let bounds = store.bounds();
    assert_eq!(bounds.last, 12);
    assert_eq!(bounds.first, 8, "the newest five remain");
    assert_eq!(store.retained_from(&selector(&["r"])), 8);
    let kept = read_all(&*store, 0, &selector(&["r"]), 3).await;
    let data: Vec<&str> = kept.iter().map(|e| e.event.data.as_str()).collect();
    assert_eq!(data, ["7", "8", "9", "10", "11"]);
}

async fn restart_keeps_ids(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(100);
    store
        .append(vec![ev("x", "1"), ev("x", "2")])
        .await
        .expect("append");
    let log = store.log_id();
    if !factory.durable() {
        return;
    }
    let store = factory.reopen(store);
    assert_eq!(store.log_id(), log, "the log keeps its identity");
    assert_eq!(store.bounds().last, 2);
    let next = store.append(vec![ev("x", "3")]).await.expect("append");
    assert_eq!(next[0].seq(), 3, "ids keep increasing across restarts");
    let all = read_all(&*store, 1, &selector(&["x"]), 10).await;
    assert_eq!(all.len(), 2, "resume after an id from before the restart");
}

/// Binary events keep their exact bytes (NUL, CR, LF, bytes that are not UTF-8, none at all),
/// typed or not, next to text events, on every read and across a restart; their encoding is
/// the one subscribers get (base64 on one `data:` line, the type marked).
async fn binary_events(factory: &mut dyn StoreFactory) {
    let topic = || Topic::new("bin").expect("valid test topic");
    let all_bytes: Vec<u8> = (0..=255u8).chain([b'\r', b'\n', 0, 0xff]).collect();
    let events = vec![
        NewEvent::binary(topic(), all_bytes.clone()),
        NewEvent::binary(topic(), Vec::new())
            .with_type("thumb")
            .expect("valid type"),
        ev("bin", "text\nafter"),
        NewEvent::binary(topic(), b"\r\n\r".to_vec()),
    ];
    let store = factory.fresh(100);
    store.append(events.clone()).await.expect("append");
    let check = |got: &[Arc<StoredEvent>], when: &str| {
        let got: Vec<&NewEvent> = got.iter().map(|e| &e.event).collect();
        assert_eq!(got, events.iter().collect::<Vec<_>>(), "{when}: byte-exact");
    };
    let read = read_all(&*store, 0, &selector(&["bin"]), 10).await;
    check(&read, "read");
    let encoded = std::str::from_utf8(&read[1].encoded).expect("base64 is text");
    assert!(
        encoded.ends_with("event: thumb.b64\ndata: \n\n"),
        "{encoded}"
    );
    let encoded = std::str::from_utf8(&read[3].encoded).expect("base64 is text");
    assert!(
        encoded.ends_with("event: message.b64\ndata: DQoN\n\n"),
        "{encoded}"
    );
    if factory.durable() {
        let store = factory.reopen(store);
        check(
            &read_all(&*store, 0, &selector(&["bin"]), 10).await,
            "after a restart",
        );
    }
}

/// The publisher-id index: an id is found at its event's position, is the event's `id:` line
/// on every read, is refused a second time (the append is all or nothing, a duplicate within
/// one batch included), and survives a restart with its event.
async fn publisher_ids(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(1000);
    let stored = store
        .append(vec![
            ev_id("a", "1", "rev-1"),
            ev("a", "2"),
            ev_id("b", "3\nx", "urn:uuid:3"),
        ])
        .await
        .expect("append");
    assert_eq!(
        &stored[0].encoded[..],
        b"id: rev-1\ndata: 1\n\n",
        "a publisher id is the id line"
    );
    assert_eq!(stored[1].sse_id(), stored[1].id.to_string());
    let find = |store: &Arc<dyn Store>, id: &'static str| {
        let store = store.clone();
        async move { store.find_id(id).await.expect("find_id") }
    };
    assert_eq!(find(&store, "rev-1").await, Some(1));
    assert_eq!(find(&store, "urn:uuid:3").await, Some(3));
    assert_eq!(find(&store, "rev-2").await, None);
    for batch in [
        vec![ev_id("a", "x", "rev-1")],
        vec![ev_id("a", "x", "fresh"), ev_id("b", "y", "urn:uuid:3")],
        vec![
            ev_id("a", "x", "twice"),
            ev("a", "y"),
            ev_id("b", "z", "twice"),
        ],
    ] {
        let refused = store.append(batch).await;
        assert!(
            matches!(&refused, Err(StoreError::IdConflict(_))),
            "a taken or repeated id is refused: {refused:?}"
        );
    }
    assert_eq!(store.bounds().last, 3, "a refused append appends nothing");
    assert_eq!(find(&store, "fresh").await, None);
    assert_eq!(find(&store, "twice").await, None);
    let read = read_all(&*store, 0, &selector(&["**"]), 10).await;
    let ids: Vec<Option<&str>> = read.iter().map(|e| e.event.id.as_deref()).collect();
    assert_eq!(ids, [Some("rev-1"), None, Some("urn:uuid:3")]);
    assert!(
        read[2].encoded.starts_with(b"id: urn:uuid:3\n"),
        "read back, encoded again"
    );
    if !factory.durable() {
        return;
    }
    let store = factory.reopen(store);
    assert_eq!(
        find(&store, "urn:uuid:3").await,
        Some(3),
        "the index survives a restart"
    );
    let refused = store.append(vec![ev_id("a", "x", "rev-1")]).await;
    assert!(
        matches!(refused, Err(StoreError::IdConflict(_))),
        "{refused:?}"
    );
    let read = read_all(&*store, 0, &selector(&["a"]), 10).await;
    assert_eq!(read[0].sse_id(), "rev-1");
}

/// An event that retention deletes leaves the index with it: its id is unknown, and free.
async fn publisher_ids_follow_retention(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(3);
    for i in 0..6 {
        let id = format!("k{i}");
        store
            .append(vec![ev_id("r", &i.to_string(), &id)])
            .await
            .expect("append");
    }
    factory.enforce_retention(&store);
    assert_eq!(store.bounds().first, 4);
    for (id, want) in [("k0", None), ("k2", None), ("k3", Some(4)), ("k5", Some(6))] {
        assert_eq!(store.find_id(id).await.expect("find_id"), want, "{id}");
    }
    let again = store
        .append(vec![ev_id("r", "again", "k0")])
        .await
        .expect("an expired event's id may be used again");
    assert_eq!(
        store.find_id("k0").await.expect("find_id"),
        Some(again[0].seq())
    );
}

/// An event with a key (a tombstone with `delete`) on `topics`.
fn ev_key(topics: &[&str], data: &str, key: &str, delete: bool) -> NewEvent {
    let max = crate::DEFAULT_MAX_KEY_BYTES;
    let topic = |t: &str| Topic::new(t).expect("valid test topic");
    let mut event = if delete {
        NewEvent::tombstone(topic(topics[0]), key, max).expect("valid test key")
    } else {
        ev(topics[0], data)
            .with_key(key, max)
            .expect("valid test key")
    };
    event.topics = topics.iter().map(|t| topic(t)).collect();
    event
}

/// Reads the whole snapshot of `selector` up to the last event, page by page.
async fn snapshot_all(
    store: &dyn Store,
    selector: &Arc<Selector>,
    page: usize,
) -> Vec<Arc<StoredEvent>> {
    let until = store.bounds().last;
    let mut out: Vec<Arc<StoredEvent>> = Vec::new();
    let mut at = 0;
    while at < until {
        let got = store
            .snapshot(at, until, selector.clone(), page, usize::MAX)
            .await
            .expect("snapshot");
        assert!(
            got.events.len() <= page,
            "a snapshot page respects its limit"
        );
        assert!(
            got.scanned_to > at || !got.events.is_empty(),
            "a snapshot read makes progress"
        );
        if let Some(last) = got.events.last() {
            at = at.max(last.seq());
        }
        at = at.max(got.scanned_to);
        out.extend(got.events);
    }
    out
}

fn datas(events: &[Arc<StoredEvent>]) -> Vec<&str> {
    events.iter().map(|e| e.event.data.as_str()).collect()
}

/// Keys: the snapshot holds the newest event of each key of the matching topics, in id
/// order, without tombstones and events without a key; a key is per topic; the key and the
/// tombstone flag survive a restart; retention takes a deleted newest event's key out.
async fn keys_and_snapshots(factory: &mut dyn StoreFactory) {
    let store = factory.fresh(100);
    store
        .append(vec![
            ev_key(&["k/a"], "a1", "x", false),
            ev_key(&["k/a"], "a2", "y", false),
            ev("k/a", "plain"),
            ev_key(&["k/b"], "b1", "x", false),
        ])
        .await
        .expect("append");
    store
        .append(vec![
            ev_key(&["k/a"], "a3", "x", false),
            ev_key(&["k/a", "k/b"], "both", "z", false),
            ev_key(&["k/a"], "", "y", true),
        ])
        .await
        .expect("append");
    let store = check_keys(store).await;
    let store = if factory.durable() {
        check_keys(factory.reopen(store)).await
    } else {
        store
    };
    drop(store);
    // Retention: the oldest events go, and with them the keys they were the newest of.
    let store = factory.fresh(3);
    for (i, key) in ["p", "q", "p", "r", "s"].iter().enumerate() {
        store
            .append(vec![ev_key(&["k/r"], &i.to_string(), key, false)])
            .await
            .expect("append");
    }
    factory.enforce_retention(&store);
    assert_eq!(
        datas(&snapshot_all(&*store, &selector(&["k/r"]), 2).await),
        ["2", "3", "4"]
    );
    for _ in 0..3 {
        store
            .append(vec![ev("k/r", "plain")])
            .await
            .expect("append");
    }
    factory.enforce_retention(&store);
    assert!(
        snapshot_all(&*store, &selector(&["k/r"]), 2)
            .await
            .is_empty(),
        "retention took every key's value"
    );
}

/// The snapshots of the events [`keys_and_snapshots`] appends first.
async fn check_keys(store: Arc<dyn Store>) -> Arc<dyn Store> {
    let all = selector(&["k/*"]);
    let a = selector(&["k/a"]);
    let b = selector(&["k/b"]);
    assert_eq!(
        datas(&snapshot_all(&*store, &all, 10).await),
        ["b1", "a3", "both"],
        "the newest of each key, in id order, without the deleted key"
    );
    assert_eq!(datas(&snapshot_all(&*store, &a, 1).await), ["a3", "both"]);
    assert_eq!(datas(&snapshot_all(&*store, &b, 1).await), ["b1", "both"]);
    let page = store
        .snapshot(0, 6, all.clone(), 10, usize::MAX)
        .await
        .expect("snapshot");
    assert_eq!(
        datas(&page.events),
        ["b1", "a3", "both"],
        "bounded by until"
    );
    let page = store
        .snapshot(0, 4, all.clone(), 10, usize::MAX)
        .await
        .expect("snapshot");
    assert_eq!(
        datas(&page.events),
        ["b1"],
        "a key whose newest event is past until is not in it (it comes live)"
    );
    let tomb = store
        .read(6, 7, all.clone(), 10, usize::MAX)
        .await
        .expect("read");
    let tomb = &tomb.events[0].event;
    assert!(tomb.delete, "a tombstone reads back as one");
    assert_eq!(tomb.key.as_deref(), Some("y"));
    assert_eq!(tomb.event_type.as_deref(), Some(crate::DELETE_EVENT));
    store
}

/// One step of the keyed model check.
#[derive(Debug, Clone)]
enum KeyOp {
    /// Events: topics (indexes), key (none: no key), tombstone.
    Append(Vec<(Vec<u8>, Option<u8>, bool)>),
    Snapshot {
        topic: Option<u8>,
        page: usize,
    },
    Retain,
    Restart,
}

fn key_op() -> impl Strategy<Value = KeyOp> {
    let event = (
        proptest::collection::vec(0u8..3, 1..3),
        proptest::option::weighted(0.8, 0u8..5),
        proptest::bool::weighted(0.15),
    );
    prop_oneof![
        4 => proptest::collection::vec(event, 1..5).prop_map(KeyOp::Append),
        3 => (proptest::option::of(0u8..3), 1usize..5)
            .prop_map(|(topic, page)| KeyOp::Snapshot { topic, page }),
        1 => Just(KeyOp::Retain),
        1 => Just(KeyOp::Restart),
    ]
}

/// Random keyed appends, snapshots, retention and restarts against a model: the snapshot is
/// the newest retained event of each (topic, key), tombstones left out.
#[allow(clippy::await_holding_refcell_ref)]
fn keyed_model_check(factory: &mut dyn StoreFactory, runtime: &tokio::runtime::Runtime) {
    const MAX: usize = 12;
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let factory = std::cell::RefCell::new(factory);
    runner
        .run(&proptest::collection::vec(key_op(), 1..30), |ops| {
            runtime.block_on(async {
                let mut f = factory.borrow_mut();
                let mut store = f.fresh(MAX);
                // (seq, topics, key, delete)
                let mut model: Vec<(u64, Vec<u8>, Option<u8>, bool)> = Vec::new();
                let topic = |t: u8| format!("km/{t}");
                for op in ops {
                    match op {
                        KeyOp::Append(items) => {
                            let events = items
                                .iter()
                                .map(|(ts, key, delete)| {
                                    let names: Vec<String> = ts.iter().map(|t| topic(*t)).collect();
                                    let names: Vec<&str> =
                                        names.iter().map(String::as_str).collect();
                                    match key {
                                        Some(k) => ev_key(&names, "v", &k.to_string(), *delete),
                                        None => {
                                            let mut e = ev(names[0], "v");
                                            e.topics = names
                                                .iter()
                                                .map(|t| Topic::new(t).expect("topic"))
                                                .collect();
                                            e
                                        }
                                    }
                                })
                                .collect();
                            let stored = store.append(events).await.expect("append");
                            for ((ts, key, delete), s) in items.into_iter().zip(&stored) {
                                model.push((s.seq(), ts, key, delete && key.is_some()));
                            }
                        }
                        KeyOp::Snapshot { topic: t, page } => {
                            let sel = match t {
                                Some(t) => selector(&[&topic(t)]),
                                None => selector(&["km/*"]),
                            };
                            let want = |floor: u64| -> Vec<u64> {
                                let mut newest = std::collections::HashMap::new();
                                for (seq, ts, key, _) in &model {
                                    let Some(key) = key else { continue };
                                    for tp in ts {
                                        newest.insert((*tp, *key), *seq);
                                    }
                                }
                                let mut seqs: Vec<u64> = newest
                                    .iter()
                                    .filter(|((tp, _), _)| t.is_none_or(|t| *tp == t))
                                    .map(|(_, seq)| *seq)
                                    .filter(|seq| *seq >= floor)
                                    .filter(|seq| !model.iter().any(|m| m.0 == *seq && m.3))
                                    .collect();
                                seqs.sort_unstable();
                                seqs.dedup();
                                seqs
                            };
                            let may = want(store.bounds().first);
                            let got = snapshot_all(&*store, &sel, page).await;
                            let must = want(store.bounds().first);
                            let got: Vec<u64> = got.iter().map(|e| e.seq()).collect();
                            prop_assert!(
                                got.iter().all(|s| may.contains(s)) && got.ends_with(&must),
                                "snapshot {:?}, expected {:?} (at least {:?})",
                                got,
                                may,
                                must
                            );
                        }
                        KeyOp::Retain => f.enforce_retention(&store),
                        KeyOp::Restart => store = f.reopen(store),
                    }
                }
                Ok(())
            })
        })
        .expect("the snapshots follow the model");
}

/// One step of the model check.
#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, String)>),
    Read {
        after: u64,
        topic: Option<u8>,
        page: usize,
        /// The byte bound of each page.
        max_bytes: usize,
    },
    Retain,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((0u8..4, "[a-z\n]{0,8}"), 1..6).prop_map(Op::Append),
        3 => (0u64..60, proptest::option::of(0u8..4), 1usize..5, 0usize..4)
            .prop_map(|(after, topic, page, bytes)| Op::Read {
                after,
                topic,
                page,
                max_bytes: [0, 40, 80, usize::MAX][bytes],
            }),
        1 => Just(Op::Retain),
        1 => Just(Op::Restart),
    ]
}

/// Random operations against the store and a plain `Vec` model.
// `block_on` runs each case to completion inside one call, so nothing else can borrow the
// factory while a case holds it across its awaits.
#[allow(clippy::await_holding_refcell_ref)]
fn model_check(factory: &mut dyn StoreFactory, runtime: &tokio::runtime::Runtime) {
    const MAX: usize = 20;
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let factory = std::cell::RefCell::new(factory);
    runner
        .run(&proptest::collection::vec(op(), 1..30), |ops| {
            runtime.block_on(async {
                let mut f = factory.borrow_mut();
                let mut store = f.fresh(MAX);
                let mut model: Vec<(u64, u8, String)> = Vec::new();
                let topic = |t: u8| format!("m/{t}");
                for op in ops {
                    match op {
                        Op::Append(items) => {
                            let events = items.iter().map(|(t, d)| ev(&topic(*t), d)).collect();
                            let stored = store.append(events).await.expect("append");
                            for ((t, d), s) in items.into_iter().zip(&stored) {
                                let expected = model.last().map_or(s.seq(), |m| m.0 + 1);
                                prop_assert_eq!(s.seq(), expected.max(1));
                                model.push((s.seq(), t, d));
                            }
                        }
                        Op::Read {
                            after,
                            topic: t,
                            page,
                            max_bytes,
                        } => {
                            let sel = match t {
                                Some(t) => selector(&[&topic(t)]),
                                None => selector(&["m/*"]),
                            };
                            // A store may sweep in the background (at open, say), so the
                            // floor can rise during the read: everything above the floor
                            // after the read must be there, nothing below the floor before.
                            let want = |from: u64| -> Vec<u64> {
                                model
                                    .iter()
                                    .filter(|m| m.0 > after && m.0 >= from)
                                    .filter(|m| t.is_none_or(|t| m.1 == t))
                                    .map(|m| m.0)
                                    .collect()
                            };
                            let may = want(store.retained_from(&sel));
                            let got = read_all_bounded(&*store, after, &sel, page, max_bytes).await;
                            let must = want(store.retained_from(&sel));
                            let got_seqs: Vec<u64> = got.iter().map(|e| e.seq()).collect();
                            prop_assert!(
                                got_seqs.windows(2).all(|w| w[0] < w[1])
                                    && got_seqs.iter().all(|s| may.contains(s)),
                                "read {:?}, retained before {:?}",
                                got_seqs,
                                may
                            );
                            prop_assert!(
                                got_seqs.ends_with(&must),
                                "read {:?}, retained after {:?}",
                                got_seqs,
                                must
                            );
                            for e in &got {
                                let m = model.iter().find(|m| m.0 == e.seq()).expect("in model");
                                prop_assert_eq!(&e.event.data, &m.2);
                            }
                        }
                        Op::Retain => {
                            f.enforce_retention(&store);
                            let b = store.bounds();
                            let kept = (b.last + 1 - b.first) as usize;
                            prop_assert!(kept <= MAX, "retention bounds the log");
                            // Retention keeps a suffix: exactly the newest events.
                            let want_first = if model.len() > MAX {
                                model[model.len() - MAX].0
                            } else {
                                model.first().map_or(b.last + 1, |m| m.0)
                            };
                            prop_assert_eq!(b.first, want_first);
                        }
                        Op::Restart => {
                            store = f.reopen(store);
                            prop_assert_eq!(
                                store.bounds().last,
                                model.last().map_or(0, |m| m.0),
                                "nothing acknowledged is lost"
                            );
                        }
                    }
                }
                Ok(())
            })
        })
        .expect("the store behaves like the model");
}

/// One step of the hub's model check.
#[derive(Debug, Clone)]
enum HubOp {
    /// Publish requests sent at once (so the commit task may take several in one append),
    /// each of 1–3 events; with `Some(topic)`, a live subscription to `h/<topic>` (or to
    /// `h/*` for 4) is opened while they are in flight.
    ///
    /// Events with `true` get a fresh publisher id; with `reuse`, one more request at the
    /// same time reuses the publisher id of an acknowledged event and must be refused alone.
    Publish {
        requests: Vec<Vec<(u8, String, bool)>>,
        subscribe_during: Option<u8>,
        reuse: Option<usize>,
    },
    /// A subscription to `h/<topic>` (`h/*` for 4), live, from the earliest event, or after
    /// the `n`-th acknowledged event (modulo their number). With `Some(answers)`, read at once
    /// and all along by a [`ModelConnection`] whose socket answers the fan-out's direct writes
    /// with `answers`, in turn; else read only at the end.
    Subscribe {
        topic: u8,
        resume: HubResume,
        sink: Option<Vec<SinkAnswer>>,
    },
}

/// How a model socket answers one direct write of the fan-out.
#[derive(Debug, Clone, Copy)]
enum SinkAnswer {
    /// Takes it all.
    All,
    /// Takes the first half: the connection writes the rest.
    Part,
    /// Would block.
    Nothing,
}

/// What a model connection wrote to its socket, in order.
#[derive(Debug, Default)]
struct ModelSocket {
    wire: Vec<u8>,
    /// What the socket did not take of a direct write, for the connection to write first.
    rest: Option<bytes::Bytes>,
}

/// A model connection's socket as the fan-out sees it ([`crate::DirectSink`]), keeping the
/// rules a real connection keeps: one answer per offer, the rest of a partial write written
/// by the connection before anything else, nothing taken meanwhile.
#[derive(Debug)]
struct ModelSink {
    answers: Vec<SinkAnswer>,
    next: std::sync::atomic::AtomicUsize,
    socket: std::sync::Mutex<ModelSocket>,
}

impl ModelSink {
    fn socket(&self) -> std::sync::MutexGuard<'_, ModelSocket> {
        self.socket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl crate::DirectSink for ModelSink {
    fn try_send(&self, bytes: &bytes::Bytes) -> crate::Sent {
        let mut socket = self.socket();
        if socket.rest.is_some() {
            return crate::Sent::Nothing;
        }
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.answers[turn % self.answers.len()] {
            SinkAnswer::Part if bytes.len() > 1 => {
                let half = bytes.len() / 2;
                socket.wire.extend_from_slice(&bytes[..half]);
                socket.rest = Some(bytes.slice(half..));
                crate::Sent::Part
            }
            SinkAnswer::All | SinkAnswer::Part => {
                socket.wire.extend_from_slice(bytes);
                crate::Sent::All
            }
            SinkAnswer::Nothing => crate::Sent::Nothing,
        }
    }
}

/// Reads `sub` as the server's connection task does: the rest of a partial direct write
/// first, then each chunk the stream hands over, to the same socket, until the stream ends.
async fn model_connection(mut sub: crate::Subscription, sink: Arc<ModelSink>) {
    use futures_core::Stream;
    std::future::poll_fn(|cx| {
        loop {
            let mut socket = sink.socket();
            if let Some(rest) = socket.rest.take() {
                socket.wire.extend_from_slice(&rest);
            }
            drop(socket);
            match std::pin::Pin::new(&mut sub).poll_next(cx) {
                std::task::Poll::Ready(Some(chunk)) => sink.socket().wire.extend_from_slice(&chunk),
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(()),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    })
    .await;
}

#[derive(Debug, Clone, Copy)]
enum HubResume {
    Live,
    Earliest,
    AfterAcknowledged(usize),
}

fn hub_op() -> impl Strategy<Value = HubOp> {
    let event = (0u8..4, "[a-z\n]{0,6}", proptest::bool::ANY);
    let request = proptest::collection::vec(event, 1..4);
    prop_oneof![
        3 => (
            proptest::collection::vec(request, 1..5),
            proptest::option::of(0u8..5),
            proptest::option::weighted(0.3, 0usize..100),
        )
            .prop_map(|(requests, subscribe_during, reuse)| HubOp::Publish {
                requests,
                subscribe_during,
                reuse,
            }),
        2 => (
            0u8..5,
            0usize..3,
            0usize..100,
            proptest::option::of(proptest::collection::vec(0usize..3, 1..6)),
        )
            .prop_map(|(topic, kind, n, sink)| HubOp::Subscribe {
                topic,
                resume: [
                    HubResume::Live,
                    HubResume::Earliest,
                    HubResume::AfterAcknowledged(n),
                ][kind],
                sink: sink.map(|answers| {
                    answers
                        .into_iter()
                        .map(|a| [SinkAnswer::All, SinkAnswer::Part, SinkAnswer::Nothing][a])
                        .collect()
                }),
            }),
    ]
}

fn hub_selector(topic: u8) -> Selector {
    let pattern = if topic < 4 {
        format!("h/{topic}")
    } else {
        "h/*".to_string()
    };
    Selector::new(vec![Pattern::new(&pattern).expect("valid test pattern")]).expect("non-empty")
}

/// A subscription of the hub's model check and what it must receive: every matching event
/// after `after`; for one opened while events were being published, every matching event
/// after some point between `after` and `at_most`.
struct Watcher {
    sub: Reader,
    topic: u8,
    after: u64,
    at_most: u64,
}

/// How a watcher's subscription is read.
enum Reader {
    /// Only at the end, by [`drain`].
    AtTheEnd(crate::Subscription),
    /// All along, by a [`model_connection`] task writing to the sink's socket.
    Connection(Arc<ModelSink>, tokio::task::JoinHandle<()>),
}

/// Waits until the socket holds the event with id `until` (5 s at most), then for a moment
/// more: every byte the connection wrote.
async fn drain_socket(sink: &ModelSink, until: Option<&str>) -> Vec<u8> {
    use std::time::Duration;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    if let Some(until) = until {
        let needle = format!("id: {until}\n");
        while tokio::time::Instant::now() < deadline {
            let wire = sink.socket().wire.clone();
            if wire.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    sink.socket().wire.clone()
}

/// Reads `sub` until the event with id `until` arrived (5 s at most), then for a moment more
/// (anything after it is an error the caller sees); with no `until`, for a moment: the
/// events, as (id, data).
async fn drain(sub: &mut crate::Subscription, until: Option<&str>) -> Vec<(String, String)> {
    use futures_core::Stream;
    use std::time::Duration;
    let mut parser = ssehub_wire::Parser::new();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut waiting = until.is_some();
    if !waiting {
        deadline = tokio::time::Instant::now() + Duration::from_millis(20);
    }
    loop {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *sub).poll_next(cx));
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Some(chunk)) => {
                parser.feed(&chunk);
                while let Some(frame) = parser.next() {
                    if let Ok(ssehub_wire::Frame::Event(e)) = frame {
                        out.push((e.last_event_id, e.data));
                    }
                }
                if waiting && out.iter().any(|(id, _)| Some(id.as_str()) == until) {
                    waiting = false;
                    deadline = tokio::time::Instant::now() + Duration::from_millis(20);
                }
            }
            Ok(None) | Err(_) => return out,
        }
    }
}

/// Random publishes and subscriptions on a hub over a fresh store of the backend, against a
/// model of the log: every publish is answered with consecutive ids in one global order, an
/// answered event can be resumed after at once (it is stored and fanned out before the
/// answer: ARCHITECTURE.md, invariant 7), and every subscription gets exactly the matching
/// events after its start, in order, once (invariants 1 and 2) — also one opened while
/// publishes are being committed.
fn hub_model_check(factory: &mut dyn StoreFactory, runtime: &tokio::runtime::Runtime) {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let factory = std::cell::RefCell::new(factory);
    runner
        .run(&proptest::collection::vec(hub_op(), 1..12), |ops| {
            runtime.block_on(async {
                // Inside the runtime: a backend may need it to open (the Redis store does).
                let store = factory.borrow_mut().fresh(100_000);
                let hub = Hub::new(
                    store,
                    HubConfig {
                        heartbeat: None,
                        // Offered only to the subscriptions read by a model connection.
                        direct_writes: true,
                        ..HubConfig::default()
                    },
                );
                // (seq, topic, data, id) of every acknowledged event, in sequence order.
                let mut model: Vec<(u64, u8, String, String)> = Vec::new();
                let mut watchers: Vec<Watcher> = Vec::new();
                let mut next_id = 0u64;
                let last = |model: &[(u64, u8, String, String)]| model.last().map_or(0, |m| m.0);
                for op in ops {
                    match op {
                        HubOp::Publish {
                            requests,
                            subscribe_during,
                            reuse,
                        } => {
                            let before = last(&model);
                            // Each event's publisher id, or none (the hub's id).
                            let requests: Vec<Vec<(u8, String, Option<String>)>> = requests
                                .into_iter()
                                .map(|items| {
                                    items
                                        .into_iter()
                                        .map(|(t, d, with_id)| {
                                            next_id += 1;
                                            (t, d, with_id.then(|| format!("urn:p:{next_id}")))
                                        })
                                        .collect()
                                })
                                .collect();
                            let taken: Vec<&String> = model
                                .iter()
                                .filter(|m| crate::EventId::parse(&m.3).is_none())
                                .map(|m| &m.3)
                                .collect();
                            let reused = reuse
                                .filter(|_| !taken.is_empty())
                                .map(|n| taken[n % taken.len()].clone());
                            let conflict = reused.map(|id| {
                                let hub = hub.clone();
                                tokio::spawn(async move {
                                    hub.publish(vec![ev_id("h/0", "dup", &id)]).await
                                })
                            });
                            let tasks: Vec<_> = requests
                                .iter()
                                .map(|items| {
                                    let hub = hub.clone();
                                    let events = items
                                        .iter()
                                        .map(|(t, d, id)| match id {
                                            Some(id) => ev_id(&format!("h/{t}"), d, id),
                                            None => ev(&format!("h/{t}"), d),
                                        })
                                        .collect();
                                    tokio::spawn(async move { hub.publish(events).await })
                                })
                                .collect();
                            if let Some(topic) = subscribe_during {
                                tokio::task::yield_now().await;
                                let sub = hub
                                    .subscribe(hub_selector(topic), &Resume::Live)
                                    .expect("subscribe");
                                let at_most =
                                    before + requests.iter().map(Vec::len).sum::<usize>() as u64;
                                watchers.push(Watcher {
                                    sub: Reader::AtTheEnd(sub),
                                    topic,
                                    after: before,
                                    at_most,
                                });
                            }
                            let mut answered = Vec::new();
                            for (task, items) in tasks.into_iter().zip(&requests) {
                                let ids = task.await.expect("publish task").expect("publish");
                                prop_assert_eq!(ids.len(), items.len());
                                for w in ids.windows(2) {
                                    prop_assert_eq!(w[1].seq, w[0].seq + 1, "one request's ids are consecutive");
                                }
                                for (id, (t, d, mine)) in ids.iter().zip(items) {
                                    let sse = mine.clone().unwrap_or_else(|| id.to_string());
                                    answered.push((id.seq, *t, d.clone(), sse));
                                }
                            }
                            if let Some(task) = conflict {
                                let refused = task.await.expect("publish task");
                                prop_assert!(
                                    matches!(refused, Err(PublishError::Store(StoreError::IdConflict(_)))),
                                    "a retained event's id is refused: {:?}",
                                    refused
                                );
                            }
                            answered.sort_by_key(|a| a.0);
                            for (i, a) in answered.iter().enumerate() {
                                prop_assert_eq!(a.0, before + 1 + i as u64, "one sequence, no gap");
                            }
                            model.extend(answered);
                        }
                        HubOp::Subscribe {
                            topic,
                            resume,
                            sink,
                        } => {
                            let (resume, after) = match resume {
                                HubResume::Live => (Resume::Live, last(&model)),
                                HubResume::Earliest => (Resume::Earliest, 0),
                                HubResume::AfterAcknowledged(n) if !model.is_empty() => {
                                    let m = &model[n % model.len()];
                                    let resume = hub
                                        .resolve(Resume::After(m.3.clone()))
                                        .await
                                        .expect("resolve");
                                    (resume, m.0)
                                }
                                HubResume::AfterAcknowledged(_) => (Resume::Live, 0),
                            };
                            let sub = hub.subscribe(hub_selector(topic), &resume).expect("subscribe");
                            prop_assert!(sub.gap().is_none(), "an acknowledged id is known: {:?}", sub.gap());
                            let sub = match sink {
                                None => Reader::AtTheEnd(sub),
                                Some(answers) => {
                                    let handle = sub.direct_handle().expect("turned on above");
                                    let sink = Arc::new(ModelSink {
                                        answers,
                                        next: Default::default(),
                                        socket: Default::default(),
                                    });
                                    handle.install(sink.clone());
                                    let task = tokio::spawn(model_connection(sub, sink.clone()));
                                    Reader::Connection(sink, task)
                                }
                            };
                            watchers.push(Watcher {
                                sub,
                                topic,
                                after,
                                at_most: after,
                            });
                        }
                    }
                }
                for w in &mut watchers {
                    let matches = |m: &&(u64, u8, String, String)| w.topic == 4 || m.1 == w.topic;
                    let matching: Vec<(String, String)> = model
                        .iter()
                        .filter(matches)
                        .filter(|m| m.0 > w.after)
                        .map(|m| (m.3.clone(), m.2.clone()))
                        .collect();
                    let must = model
                        .iter()
                        .filter(matches)
                        .filter(|m| m.0 > w.at_most)
                        .count();
                    let until = (must > 0).then(|| matching.last().map(|m| m.0.as_str())).flatten();
                    let sub = match &mut w.sub {
                        Reader::AtTheEnd(sub) => sub,
                        Reader::Connection(sink, task) => {
                            // Opened after `after` was acknowledged: exactly the matching
                            // events' bytes, each encoded once, whole, in order.
                            let wire = drain_socket(sink, until).await;
                            task.abort();
                            let mut expected = Vec::new();
                            for m in model.iter().filter(matches).filter(|m| m.0 > w.after) {
                                let topic = format!("h/{}", m.1);
                                // A publisher id is the `id:` line itself; a hub id names its log.
                                let (log, event) = match crate::EventId::parse(&m.3) {
                                    Some(id) => (id.log, ev(&topic, &m.2)),
                                    None => (crate::LogId(0), ev_id(&topic, &m.2, &m.3)),
                                };
                                expected.extend_from_slice(&StoredEvent::new(log, m.0, event).encoded);
                            }
                            prop_assert!(
                                wire == expected,
                                "connection to {} after {} wrote {:?}, the matching events are {:?}",
                                w.topic,
                                w.after,
                                String::from_utf8_lossy(&wire),
                                String::from_utf8_lossy(&expected)
                            );
                            continue;
                        }
                    };
                    let got = drain(sub, until).await;
                    prop_assert!(
                        matching.ends_with(&got) && got.len() >= must,
                        "subscription to {} after {} (at most {}) got {:?}, the matching events are {:?}",
                        w.topic,
                        w.after,
                        w.at_most,
                        got,
                        matching
                    );
                }
                Ok(())
            })
        })
        .expect("the hub over the store behaves like the model");
}
