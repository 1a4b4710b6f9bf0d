//! Snapshots on `Hub` directly, against a model (issue 15): a subscription with a snapshot
//! starts, when it does not resume from a known id, with the newest retained event of every
//! key of its topics (tombstones and events without a key left out), in id order, then every
//! later event live, each once; from a known id it resumes as without a snapshot; from an
//! expired or unknown id it gets the gap notice, then the snapshot. Private keyed events reach
//! only subscribers allowed to see them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use ssehub_core::{
    GAP_EVENT, Hub, HubConfig, MemoryStore, NewEvent, Pattern, Resume, Retention, Selector,
    Subscription, Topic,
};
use ssehub_wire::{Frame, MessageEvent, Parser};

fn sel(patterns: &[&str]) -> Selector {
    Selector::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect()).unwrap()
}

/// Reads `n` events from `sub` (at most 5 s), then checks nothing more is ready.
async fn take_exactly(sub: &mut Subscription, n: usize) -> Vec<MessageEvent> {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("events arrive in time")
            .expect("stream still open");
        parser.feed(&chunk);
        while let Some(frame) = parser.next() {
            if let Frame::Event(e) = frame.unwrap() {
                out.push(e);
            }
        }
    }
    let more = tokio::time::timeout(Duration::from_millis(20), sub.next()).await;
    assert!(more.is_err(), "unexpected bytes after {out:?}: {more:?}");
    out
}

/// One event of the model: (topic index, key, tombstone, data).
type Ev = (u8, Option<u8>, bool, String);

fn new_event((t, key, delete, data): &Ev) -> NewEvent {
    let event = NewEvent::new(Topic::new(&format!("s/{t}")).unwrap(), data.clone());
    match key {
        Some(k) => {
            let event = event.with_key(format!("k{k}"), 256).unwrap();
            if *delete { event.deleting() } else { event }
        }
        None => event,
    }
}

/// What the subscriber of `s/{topic}` (or `s/*`) must see of the retained `log` (seq, event)
/// as its snapshot.
fn snapshot_of(log: &[(u64, Ev)], topic: Option<u8>) -> Vec<String> {
    let mut newest: HashMap<(u8, u8), u64> = HashMap::new();
    for (seq, (t, key, _, _)) in log {
        if let Some(k) = key {
            newest.insert((*t, *k), *seq);
        }
    }
    let mut seqs: Vec<u64> = newest
        .iter()
        .filter(|((t, _), _)| topic.is_none_or(|want| *t == want))
        .map(|(_, seq)| *seq)
        .collect();
    seqs.sort_unstable();
    seqs.iter()
        .map(|s| &log.iter().find(|(seq, _)| seq == s).unwrap().1)
        .filter(|(_, _, delete, _)| !delete)
        .map(|(_, _, _, data)| data.clone())
        .collect()
}

#[derive(Debug, Clone)]
enum Start {
    Live,
    /// After the `n`-th event published (modulo their number).
    After(usize),
    Unknown,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Events before, a subscription, events after: the stream is exactly what the model says.
    #[test]
    fn snapshot_resume_and_lost_ids_follow_the_model(
        before in proptest::collection::vec((0u8..2, proptest::option::weighted(0.8, 0u8..4), proptest::bool::weighted(0.2)), 0..25),
        after in proptest::collection::vec((0u8..2, proptest::option::weighted(0.8, 0u8..4), proptest::bool::weighted(0.2)), 0..8),
        topic in proptest::option::of(0u8..2),
        start in prop_oneof![Just(Start::Live), (0usize..25).prop_map(Start::After), Just(Start::Unknown)],
        snapshot in proptest::bool::ANY,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            const KEEP: usize = 10;
            let store = Arc::new(MemoryStore::new(Retention { max_events: KEEP, max_bytes: usize::MAX }));
            let hub = Hub::new(store, HubConfig::default());
            let mut log: Vec<(u64, Ev)> = Vec::new();
            let mut ids = Vec::new();
            for (i, (t, key, delete)) in before.iter().enumerate() {
                let ev: Ev = (*t, *key, *delete && key.is_some(), format!("b{i}"));
                let id = hub.publish(vec![new_event(&ev)]).await.unwrap()[0];
                ids.push(id);
                log.push((id.seq, ev));
            }
            let retained: Vec<(u64, Ev)> = log[log.len().saturating_sub(KEEP)..].to_vec();
            let resume = match &start {
                Start::Live => Resume::Live,
                Start::After(n) if !ids.is_empty() => Resume::After(ids[n % ids.len()].to_string()),
                _ => Resume::After("0badc0de-1".into()),
            };
            let pattern = topic.map_or("s/*".to_string(), |t| format!("s/{t}"));
            let matches = |ev: &Ev| topic.is_none_or(|t| ev.0 == t);
            let mut sub = hub.subscribe_with_snapshot(sel(&[&pattern]), &resume, None, snapshot).unwrap();
            // What must come before the live events.
            let first_retained = retained.first().map_or(u64::MAX, |(s, _)| *s);
            let (gap, head): (bool, Vec<String>) = match &resume {
                Resume::Live if snapshot => (false, snapshot_of(&retained, topic)),
                Resume::Live => (false, Vec::new()),
                Resume::After(text) => match ids.iter().position(|id| id.to_string() == *text) {
                    Some(i) if ids[i].seq + 1 >= first_retained || i + 1 == ids.len() => (
                        false,
                        log[i + 1..]
                            .iter()
                            .filter(|(_, ev)| matches(ev))
                            .map(|(_, ev)| if ev.2 { format!("k{}", ev.1.unwrap()) } else { ev.3.clone() })
                            .collect(),
                    ),
                    _ if snapshot => (true, snapshot_of(&retained, topic)),
                    _ => (
                        true,
                        retained
                            .iter()
                            .filter(|(_, ev)| matches(ev))
                            .map(|(_, ev)| if ev.2 { format!("k{}", ev.1.unwrap()) } else { ev.3.clone() })
                            .collect(),
                    ),
                },
                _ => unreachable!(),
            };
            // The head first (events published meanwhile could be retention's next victims,
            // which a history replay reports as a gap of its own), then what is published
            // after the subscription opened: live, each once.
            let got = take_exactly(&mut sub, head.len() + usize::from(gap)).await;
            let got_gap = got.first().is_some_and(|e| e.event_type == GAP_EVENT);
            prop_assert_eq!(got_gap, gap, "{:?}", got);
            let data: Vec<String> = got[usize::from(gap)..].iter().map(|e| e.data.clone()).collect();
            prop_assert_eq!(data, head);
            let mut live = Vec::new();
            for (i, (t, key, delete)) in after.iter().enumerate() {
                let ev: Ev = (*t, *key, *delete && key.is_some(), format!("a{i}"));
                hub.publish(vec![new_event(&ev)]).await.unwrap();
                if matches(&ev) {
                    live.push(if ev.2 { format!("k{}", ev.1.unwrap()) } else { ev.3.clone() });
                }
            }
            let got = take_exactly(&mut sub, live.len()).await;
            let data: Vec<String> = got.iter().map(|e| e.data.clone()).collect();
            prop_assert_eq!(data, live);
            Ok(())
        })?;
    }
}

/// A private keyed event is in the snapshot only of subscribers allowed to see it.
#[tokio::test]
async fn private_keyed_events_only_to_allowed_subscribers() {
    let hub = Hub::new(
        Arc::new(MemoryStore::new(Retention::default())),
        HubConfig::default(),
    );
    let keyed = |topic: &str, data: &str, key: &str, private: bool| {
        let mut e = NewEvent::new(Topic::new(topic).unwrap(), data)
            .with_key(key, 256)
            .unwrap();
        e.private = private;
        e
    };
    hub.publish(vec![
        keyed("u/alice", "secret", "a", true),
        keyed("u/bob", "public", "b", false),
    ])
    .await
    .unwrap();
    let mut anyone = hub
        .subscribe_with_snapshot(sel(&["u/*"]), &Resume::Live, None, true)
        .unwrap();
    let got = take_exactly(&mut anyone, 1).await;
    assert_eq!(got[0].data, "public");
    let mut alice = hub
        .subscribe_with_snapshot(sel(&["u/*"]), &Resume::Live, Some(sel(&["u/alice"])), true)
        .unwrap();
    let got = take_exactly(&mut alice, 2).await;
    assert_eq!(
        got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["secret", "public"]
    );
}
