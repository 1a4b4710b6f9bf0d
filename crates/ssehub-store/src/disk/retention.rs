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

use crate::options::{Retention, RetentionLimits, TopicRule};

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

/// The events one sweep deletes: the oldest of each sequence that break its bound, at most
/// `budget` in all.
#[derive(Debug)]
pub(super) struct Victims {
    seqs: Vec<u64>,
    budget: usize,
    now_ms: u64,
}

impl Victims {
    /// No victims yet; ages are measured at `now_ms`.
    pub(super) fn new(budget: usize, now_ms: u64) -> Victims {
        Victims {
            seqs: Vec::new(),
            budget,
            now_ms,
        }
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
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(entry.size);
        }
        Ok(())
    }

    /// The victims, oldest first, each once (an event on several topics may be taken by more
    /// than one rule).
    pub(super) fn into_sorted(mut self) -> Vec<u64> {
        self.seqs.sort_unstable();
        self.seqs.dedup();
        self.seqs
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
}
