//! The ssehub hub core: everything between an accepted publish and the bytes a subscriber's
//! connection writes, with no HTTP and no concrete storage engine in it.
//!
//! - [`Topic`], [`Pattern`] and [`Selector`]: what events are published to and what
//!   subscribers listen to (`*` is one segment, a trailing `**` the rest).
//! - [`EventId`]: `<log>-<seq>`, one sequence for the whole hub, so one id resumes a
//!   multi-topic subscription, and a log identity so foreign ids are detected. A publisher may
//!   give an event its own id instead ([`check_publisher_id`]); the store indexes it to the
//!   event's sequence number ([`Store::find_id`]) and [`Hub::resolve`] resumes from it.
//! - [`Store`]: the history backend trait; [`MemoryStore`] is the in-memory one.
//! - [`Hub`]: group commit through one sequencing task, fan-out of each event encoded once into
//!   bounded per-subscriber queues, and [`Subscription`]s that replay then go live with no gap
//!   and no duplicate (ARCHITECTURE.md, "Resume invariants").
//!
//! # Layout
//!
//! - `topic.rs` — topics, patterns, selectors, validation.
//! - `uritemplate.rs` — URI templates (RFC 6570) compiled to matchers, for Mercure, and the
//!   limits on one template.
//! - `templates.rs` — [`Templates`]: compiled once per distinct text, shared, budgeted.
//! - `id.rs` — event ids, log ids, where a subscription starts ([`Resume`]).
//! - `key.rs` — keys of events, tombstones, [`check_key`]; what a snapshot is.
//! - `event.rs` — [`NewEvent`] (validated input) and [`StoredEvent`] (sequenced, encoded).
//! - `store.rs` — the [`Store`] trait and its contract.
//! - `memory.rs` — [`MemoryStore`] with count and byte retention.
//! - `registry.rs` — the subscription index and fan-out.
//! - `live_queue.rs` — `LiveQueue`: one subscriber's bounded live queue, filled by fan-out, and
//!   the slow-consumer rule.
//! - `direct.rs` — the idle-writable fast path: [`DirectSink`], a connection's socket the
//!   fan-out may write to while the connection sleeps, and [`DirectHandle`] to install it.
//! - `subscription.rs` — the stream a connection sends: gap notice, replay, live.
//! - `hub.rs` — [`Hub`]: the commit task, subscribe, shutdown, heartbeats, [`Stats`].
//! - `testing.rs` — the store conformance suite (feature `testing`).

mod direct;
mod event;
mod hub;
mod id;
mod key;
mod live_queue;
mod memory;
mod registry;
mod store;
mod subscription;
mod templates;
#[cfg(feature = "testing")]
pub mod testing;
mod topic;
mod uritemplate;

pub use direct::{DirectHandle, DirectSink, Sent};
pub use event::{BINARY_SUFFIX, MAX_ID_LINE, NewEvent, StoredEvent, binary_data_line};
pub use hub::{Hub, HubConfig, PublishError, Stats, SubscribeError};
pub use id::{DEFAULT_MAX_ID_BYTES, EventId, IdError, LogId, Resume, check_publisher_id};
pub use key::{DEFAULT_MAX_KEY_BYTES, DELETE_EVENT, KeyError, check_key};
pub use live_queue::CloseReason;
pub use memory::{MemoryStore, Retention};
pub use store::{
    Bounds, BoxFuture, LiveOutbox, LiveRelay, OrderedFeed, PageBuilder, ReadPage, RelayStats,
    Store, StoreError,
};
pub use subscription::{GAP_EVENT, Gap, GapReason, Subscription};
pub use templates::Templates;
pub use topic::{
    MAX_IRI_BYTES, MAX_SEGMENTS, MAX_TOPIC_BYTES, Pattern, Selector, Topic, TopicError,
};
pub use uritemplate::{TemplateError, TemplateLimits};
