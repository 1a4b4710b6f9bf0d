//! Retention decisions, without the file: which of the oldest events break a bound.
//!
//! A bound ([`RetentionLimits`]) is on a sequence of events — the whole log for the hub-wide bounds,
//! the events of one topic for a [`TopicRule`] — and retention always deletes from the front
//! of that sequence: while what remains breaks the bound, the oldest event goes. [`Victims`]
//! collects those events over every sequence a sweep looks at, up to a budget per sweep;
//! [`ruled_topics`] says which topics fall under a rule. The sweep (`sweep.rs`) feeds them
//! from redb and deletes what they decide.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::options::{Compaction, Retention, RetentionLimits, TopicRule};

/// One event as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) seq: u64,
    /// Its size, as the counters count it.
    pub(super) size: u64,
    /// When it was stored (ms since the epoch); `None` when unknown or not needed (then no age
    /// bound removes it).
    pub(super) time_ms: Option<u64>,
}

/// One event of a compacted topic as compaction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Keyed {
    pub(super) seq: u64,
    /// Whether it has a key.
    pub(super) has_key: bool,
    /// Whether it is its key's newest event in the topic.
    pub(super) newest: bool,
    /// Whether it is a tombstone.
    pub(super) tombstone: bool,
    /// When it was stored (ms since the epoch), when known.
    pub(super) time_ms: Option<u64>,
}

/// What compaction does with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compacted {
    /// Kept: the newest of its key, a young tombstone, or an event without a key.
    Keep,
    /// Replaced by a newer event of its key: deleted without raising the topic's floor.
    Superseded,
    /// A tombstone past its grace: deleted, and the floor rises to it.
    Expired,
}

/// The decision of [`Compaction`] for `event` at `now_ms`.
pub(super) fn compact(event: &Keyed, compaction: &Compaction, now_ms: u64) -> Compacted {
    if !event.has_key {
        return Compacted::Keep;
    }
    if !event.newest {
        return Compacted::Superseded;
    }
    let grace = u64::try_from(compaction.tombstone_grace.as_millis()).unwrap_or(u64::MAX);
    match event.time_ms {
        Some(t) if event.tombstone && now_ms.saturating_sub(t) > grace => Compacted::Expired,
        _ => Compacted::Keep,
    }
}

/// The events one sweep deletes: the oldest of each sequence that break its bound, at most
/// `budget` in all.
#[derive(Debug)]
pub(super) struct Victims {
    seqs: Vec<u64>,
    /// Those of `seqs` that compaction deletes as superseded: their topics' floors stay.
    quiet: Vec<u64>,
    /// Those of `seqs` a bound or an expired tombstone took: their floors rise, even when
    /// compaction took them quietly too.
    loud: Vec<u64>,
    budget: usize,
    now_ms: u64,
}

impl Victims {
    /// No victims yet; ages are measured at `now_ms`.
    pub(super) fn new(budget: usize, now_ms: u64) -> Victims {
        Victims {
            seqs: Vec::new(),
            quiet: Vec::new(),
            loud: Vec::new(),
            budget,
            now_ms,
        }
    }

    /// Whether the budget is spent.
    pub(super) fn is_full(&self) -> bool {
        self.seqs.len() >= self.budget
    }

    /// Takes what `compaction` deletes of `events`, while the budget lasts. Returns the
    /// sequence number of the last event looked at, to go on after it next time.
    ///
    /// # Errors
    ///
    /// The first error of `events`.
    pub(super) fn take_compacted<E>(
        &mut self,
        compaction: &Compaction,
        events: impl IntoIterator<Item = Result<Keyed, E>>,
    ) -> Result<Option<u64>, E> {
        let mut last = None;
        for event in events {
            if self.is_full() {
                break;
            }
            let event = event?;
            last = Some(event.seq);
            match compact(&event, compaction, self.now_ms) {
                Compacted::Keep => {}
                Compacted::Superseded => {
                    self.seqs.push(event.seq);
                    self.quiet.push(event.seq);
                }
                Compacted::Expired => {
                    self.seqs.push(event.seq);
                    self.loud.push(event.seq);
                }
            }
        }
        Ok(last)
    }

    /// Takes events from the front of `oldest_first`, a sequence holding `count` events of
    /// `bytes` in all, while what remains of it breaks `limits`, and the budget lasts. The
    /// sequence is read lazily: no entry after the first one kept is asked for.
    ///
    /// # Errors
    ///
    /// The first error of `oldest_first`.
    pub(super) fn take_expired<E>(
        &mut self,
        limits: &RetentionLimits,
        mut count: u64,
        mut bytes: u64,
        oldest_first: impl IntoIterator<Item = Result<Entry, E>>,
    ) -> Result<(), E> {
        let mut entries = oldest_first.into_iter();
        while self.seqs.len() < self.budget {
            let Some(entry) = entries.next() else { break };
            let entry = entry?;
            let age = entry
                .time_ms
                .map(|t| Duration::from_millis(self.now_ms.saturating_sub(t)));
            if !limits.exceeded(count, bytes, age) {
                break;
            }
            self.seqs.push(entry.seq);
            self.loud.push(entry.seq);
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(entry.size);
        }
        Ok(())
    }

    /// The victims, oldest first, each once (an event on several topics may be taken by more
    /// than one rule).
    #[cfg(test)]
    pub(super) fn into_sorted(self) -> Vec<u64> {
        self.into_parts().0
    }

    /// The victims as [`into_sorted`](Victims::into_sorted) gives them, and those of them
    /// that only compaction took as superseded (sorted): deleted without raising a floor. An
    /// event a bound also took is not quiet.
    pub(super) fn into_parts(mut self) -> (Vec<u64>, Vec<u64>) {
        self.quiet.sort_unstable();
        self.quiet.dedup();
        self.loud.sort_unstable();
        let loud = &self.loud;
        self.quiet.retain(|s| loud.binary_search(s).is_err());
        self.seqs.sort_unstable();
        self.seqs.dedup();
        (self.seqs, self.quiet)
    }
}

/// The topics under a rule of `retention` (the first rule that matches applies), with their
/// stats. Only those are copied: a hub with 100,000 topics and no per-topic rule must not
/// copy its topic table on every sweep.
pub(super) fn ruled_topics<'r, S: Copy>(
    retention: &'r Retention,
    topics: &HashMap<Arc<str>, S>,
) -> Vec<(Arc<str>, S, &'r TopicRule)> {
    if retention.topics.is_empty() {
        return Vec::new();
    }
    topics
        .iter()
        .filter_map(|(topic, stats)| {
            let t = ssehub_core::Topic::new(topic).ok()?;
            let rule = retention.topics.iter().find(|r| r.pattern.matches(&t))?;
            Some((topic.clone(), *stats, rule))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use ssehub_core::Pattern;

    use super::*;

    /// Events `1..=n` of 10 bytes each, stored at `time_ms = seq * 1000`.
    fn log(n: u64) -> Vec<Result<Entry, Infallible>> {
        (1..=n)
            .map(|seq| {
                Ok(Entry {
                    seq,
                    size: 10,
                    time_ms: Some(seq * 1000),
                })
            })
            .collect()
    }

    fn expired(limits: RetentionLimits, n: u64, now_ms: u64, budget: usize) -> Vec<u64> {
        let mut victims = Victims::new(budget, now_ms);
        victims.take_expired(&limits, n, n * 10, log(n)).unwrap();
        victims.into_sorted()
    }

    #[test]
    fn an_unbounded_sequence_loses_nothing() {
        assert_eq!(
            expired(RetentionLimits::default(), 5, 1_000_000, 100),
            [0u64; 0]
        );
    }

    #[test]
    fn a_count_bound_keeps_the_newest() {
        let limits = RetentionLimits {
            max_events: Some(3),
            ..RetentionLimits::default()
        };
        assert_eq!(expired(limits, 5, 0, 100), [1, 2]);
        assert_eq!(expired(limits, 3, 0, 100), [0u64; 0]);
    }

    #[test]
    fn a_byte_bound_counts_sizes() {
        let limits = RetentionLimits {
            max_bytes: Some(25),
            ..RetentionLimits::default()
        };
        // 50 bytes: three must go to reach 20.
        assert_eq!(expired(limits, 5, 0, 100), [1, 2, 3]);
    }

    #[test]
    fn an_age_bound_takes_what_is_older_and_spares_unknown_ages() {
        let limits = RetentionLimits {
            max_age: Some(Duration::from_secs(2)),
            ..RetentionLimits::default()
        };
        // At 5 s: events 1 and 2 are 4 s and 3 s old, event 3 is exactly 2 s (kept).
        assert_eq!(expired(limits, 5, 5_000, 100), [1, 2]);
        // Stored "in the future" (a clock step back): age 0, kept.
        assert_eq!(expired(limits, 5, 0, 100), [0u64; 0]);
        let mut victims = Victims::new(100, 1_000_000);
        let unknown = [Ok::<_, Infallible>(Entry {
            seq: 1,
            size: 10,
            time_ms: None,
        })];
        victims.take_expired(&limits, 1, 10, unknown).unwrap();
        assert_eq!(victims.into_sorted(), [0u64; 0]);
    }

    #[test]
    fn the_budget_bounds_a_sweep_across_sequences_and_nothing_more_is_read() {
        let limits = RetentionLimits {
            max_events: Some(1),
            ..RetentionLimits::default()
        };
        let mut victims = Victims::new(3, 0);
        victims.take_expired(&limits, 3, 30, log(3)).unwrap();
        // The budget is left for one more: a topic's sequence gives its oldest, and the
        // entry after it, which would fail, is never read.
        let topic = [
            Ok(Entry {
                seq: 7,
                size: 10,
                time_ms: None,
            }),
            Err("read past the budget"),
        ];
        victims.take_expired(&limits, 5, 50, topic).unwrap();
        assert_eq!(victims.into_sorted(), [1, 2, 7]);
    }

    #[test]
    fn an_event_taken_twice_is_deleted_once_and_errors_surface() {
        let limits = RetentionLimits {
            max_events: Some(0),
            ..RetentionLimits::default()
        };
        let mut victims = Victims::new(100, 0);
        victims.take_expired(&limits, 2, 20, log(2)).unwrap();
        victims.take_expired(&limits, 1, 10, log(1)).unwrap();
        assert_eq!(
            victims.take_expired(&limits, 1, 10, [Err::<Entry, _>("io")]),
            Err("io")
        );
        assert_eq!(victims.into_sorted(), [1, 2]);
    }

    #[test]
    fn ruled_topics_are_those_a_rule_matches_with_the_first_rule() {
        let rule = |pattern: &str, max_events| TopicRule {
            pattern: Pattern::new(pattern).unwrap(),
            limits: RetentionLimits {
                max_events: Some(max_events),
                ..RetentionLimits::default()
            },
            compaction: None,
        };
        let retention = Retention {
            topics: vec![rule("logs/*", 10), rule("logs/debug", 1)],
            ..Retention::default()
        };
        let topics = HashMap::from([(Arc::from("logs/debug"), 1u8), (Arc::from("news"), 2u8)]);
        let ruled = ruled_topics(&retention, &topics);
        assert_eq!(ruled.len(), 1);
        let (topic, stats, rule) = &ruled[0];
        assert_eq!((&**topic, *stats), ("logs/debug", 1));
        assert_eq!(
            rule.limits.max_events,
            Some(10),
            "the first rule that matches"
        );
        assert!(ruled_topics(&Retention::default(), &topics).is_empty());
    }

    /// Compaction keeps each key's newest event and events without a key, deletes replaced
    /// events quietly, and tombstones only past their grace (raising the floor).
    #[test]
    fn compaction_keeps_the_newest_of_each_key() {
        let compaction = Compaction {
            tombstone_grace: Duration::from_secs(10),
        };
        let event = |seq, has_key, newest, tombstone, time_ms| Keyed {
            seq,
            has_key,
            newest,
            tombstone,
            time_ms: Some(time_ms),
        };
        let now = 100_000;
        let cases = [
            (event(1, false, false, false, 0), Compacted::Keep),
            (event(2, true, false, false, now), Compacted::Superseded),
            (event(3, true, true, false, 0), Compacted::Keep),
            (event(4, true, true, true, now - 5_000), Compacted::Keep),
            (event(5, true, true, true, now - 20_000), Compacted::Expired),
            (event(6, true, false, true, now), Compacted::Superseded),
        ];
        for (e, want) in cases {
            assert_eq!(compact(&e, &compaction, now), want, "{e:?}");
        }
        let mut victims = Victims::new(3, now);
        let last = victims
            .take_compacted::<Infallible>(&compaction, cases.iter().map(|(e, _)| Ok(*e)))
            .unwrap();
        assert_eq!(last, Some(6), "looked at all six, three taken");
        // A bound takes 2 as well: then it is not quiet (its floor rises).
        let limits = RetentionLimits {
            max_events: Some(0),
            ..RetentionLimits::default()
        };
        victims.budget = 10;
        victims
            .take_expired::<Infallible>(
                &limits,
                1,
                10,
                [Ok(Entry {
                    seq: 2,
                    size: 10,
                    time_ms: None,
                })],
            )
            .unwrap();
        assert_eq!(victims.into_parts(), (vec![2, 5, 6], vec![6]));
    }
}
