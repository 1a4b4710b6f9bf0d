//! What subscribers received, checked per stream and summed over a run: the one aggregation
//! that `fanout` and `topics` share.
//!
//! A scenario says only what one of its events means to one subscriber (its [`Check`]: a
//! sequence number in order, the subscriber's own topic). Parsing the stream, counting parse
//! errors, foreign events and duplicates, comparing what arrived with what the hub
//! acknowledged, and counting streams that broke is done here, once, so the scenarios' reports
//! count alike.

use ssehub_wire::{Frame, Parser};

use crate::stream::{End, Tally};

/// What a scenario checks in the events of one subscriber's stream.
pub(crate) trait Check {
    /// One event's data, parsed at `now` (microseconds since the Unix epoch); what should not
    /// happen goes into `counts`.
    fn event(&mut self, data: &str, now: u64, counts: &mut Counts);

    /// Whether everything this subscriber expects has arrived, so its stream may end.
    fn complete(&self) -> bool;

    /// Of the distinct events of this run received: how many the hub had acknowledged, and
    /// how many it had not (their publish failed, e.g. timed out after the hub stored them).
    fn delivered(&self, acked: &Bitset) -> (u64, u64);
}

/// One stream's events that should not arrive.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// A second copy of an event.
    pub(crate) duplicates: u64,
    /// Events that are not this run's (another run id, not our JSON).
    pub(crate) foreign: u64,
    /// Bytes the parser refused.
    pub(crate) parse_errors: u64,
}

/// One subscriber: its stream's parser, the scenario's check and the counts.
pub(crate) struct Subscriber<C> {
    parser: Parser,
    pub(crate) counts: Counts,
    pub(crate) check: C,
}

impl<C> Subscriber<C> {
    pub(crate) fn new(check: C) -> Self {
        Subscriber {
            parser: Parser::new(),
            counts: Counts::default(),
            check,
        }
    }
}

impl<C: Check> Tally for Subscriber<C> {
    fn feed(&mut self, bytes: &[u8], now: u64) {
        for frame in self.parser.feed_iter(bytes) {
            match frame {
                Ok(Frame::Event(event)) => self.check.event(&event.data, now, &mut self.counts),
                Ok(Frame::Comment(_)) => {}
                Err(_) => self.counts.parse_errors += 1,
            }
        }
    }

    fn complete(&self) -> bool {
        self.check.complete()
    }
}

/// The sum over a run's subscribers.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Distinct acknowledged events received, summed over subscribers.
    pub(crate) delivered: u64,
    /// Distinct events received whose publish had failed.
    pub(crate) unacknowledged: u64,
    pub(crate) duplicates: u64,
    pub(crate) foreign: u64,
    pub(crate) parse_errors: u64,
    /// Streams the hub ended, or that broke, before the bench stopped them.
    pub(crate) ended_early: u64,
    pub(crate) first_stream_error: Option<String>,
}

impl Totals {
    /// Adds one subscriber, whose stream ended so, given the events the hub acknowledged.
    pub(crate) fn add<C: Check>(&mut self, subscriber: &Subscriber<C>, end: End, acked: &Bitset) {
        let (delivered, unacknowledged) = subscriber.check.delivered(acked);
        self.delivered += delivered;
        self.unacknowledged += unacknowledged;
        let counts = &subscriber.counts;
        self.duplicates += counts.duplicates;
        self.foreign += counts.foreign;
        self.parse_errors += counts.parse_errors;
        if let End::Broken(error) = end {
            self.ended_early += 1;
            self.first_stream_error.get_or_insert(error);
        }
    }
}

/// A set of event numbers (sequence numbers, topic indexes): which were seen, or acknowledged.
#[derive(Clone)]
pub(crate) struct Bitset(Box<[u64]>);

impl Bitset {
    pub(crate) fn new(bits: u32) -> Self {
        Bitset(vec![0; (bits as usize).div_ceil(64)].into_boxed_slice())
    }

    pub(crate) fn get(&self, i: u32) -> bool {
        self.0[i as usize / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }

    pub(crate) fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// How many are in both sets.
    pub(crate) fn count_and(&self, other: &Bitset) -> u64 {
        let both = self.0.iter().zip(other.0.iter());
        both.map(|(a, b)| u64::from((a & b).count_ones())).sum()
    }
}
