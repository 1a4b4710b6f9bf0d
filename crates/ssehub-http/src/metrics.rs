//! `GET /metrics`: Prometheus text exposition.
//!
//! The hub's own counters live in `ssehub-core` as atomics (no metrics library down there);
//! a [`Collector`] reads them at scrape time. HTTP-level figures (open streams, refused
//! requests by reason, failed accepts by reason) are owned here. Metric names are constants in
//! this file only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use ssehub_core::Hub;

use crate::AppState;
use crate::error::Reason;

/// The `reason` label of refused requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The labels of the relays' metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RelayLabel {
    relay: String,
}

/// The labels of `ssehub_relay_ended_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RelayEndLabel {
    relay: String,
    reason: &'static str,
}

/// Why accepting a connection failed: the `reason` label of `ssehub_accept_errors_total`.
/// Low cardinality by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcceptError {
    /// The process has as many files open as its limit allows (`EMFILE`).
    ProcessFdLimit,
    /// The system-wide file table is full (`ENFILE`).
    SystemFdLimit,
    /// The kernel has no memory or socket buffers left (`ENOMEM`, `ENOBUFS`).
    NoMemory,
    /// The client went away before the connection was accepted (`ECONNABORTED`, …): not a
    /// problem of the hub, and no reason to wait.
    Aborted,
    /// Anything else.
    Other,
}

impl AcceptError {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            AcceptError::ProcessFdLimit => "process_fd_limit",
            AcceptError::SystemFdLimit => "system_fd_limit",
            AcceptError::NoMemory => "no_memory",
            AcceptError::Aborted => "aborted",
            AcceptError::Other => "other",
        }
    }

    /// Every reason, for pre-registering metric labels.
    pub const ALL: [AcceptError; 5] = [
        AcceptError::ProcessFdLimit,
        AcceptError::SystemFdLimit,
        AcceptError::NoMemory,
        AcceptError::Aborted,
        AcceptError::Other,
    ];
}

/// The counters of failed accepts, one per [`AcceptError`]: the listener (in the binary)
/// bumps them, `/metrics` reads them. Cheap to share.
#[derive(Debug, Clone)]
pub struct AcceptErrors {
    counters: [Counter; AcceptError::ALL.len()],
}

impl AcceptErrors {
    /// Counts one failed accept.
    pub fn record(&self, error: AcceptError) {
        self.counters[error as usize].inc();
    }

    /// How many accepts failed for `error` so far.
    pub fn get(&self, error: AcceptError) -> u64 {
        self.counters[error as usize].get()
    }
}

/// Why the connection layer closed a connection on a timer: the `kind` label of
/// `ssehub_connection_timeouts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnTimeout {
    /// A request head (or HTTP/2's preface) did not arrive in full within
    /// `limits.header_read_timeout_ms` of its first byte (slowloris).
    Header,
    /// No request, and nothing sent, for `limits.idle_timeout_ms` between requests.
    Idle,
    /// A request body did not arrive in full within `limits.body_read_timeout_ms`.
    Body,
    /// A TLS handshake did not finish within `limits.tls_handshake_timeout_ms` of the accept.
    TlsHandshake,
}

impl ConnTimeout {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnTimeout::Header => "header",
            ConnTimeout::Idle => "idle",
            ConnTimeout::Body => "body",
            ConnTimeout::TlsHandshake => "tls_handshake",
        }
    }

    /// Every kind, for pre-registering metric labels.
    pub const ALL: [ConnTimeout; 4] = [
        ConnTimeout::Header,
        ConnTimeout::Idle,
        ConnTimeout::Body,
        ConnTimeout::TlsHandshake,
    ];
}

/// The `kind` label of connection timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The connection layer's figures (`ssehub-server` bumps them, `/metrics` reads them): open
/// TCP connections, connections refused at the `limits.max_open_connections` cap, timeouts by
/// kind, failed accepts, and the refusals it answers itself. Cheap to share; the
/// [`Default`] value is not registered anywhere (for tests that start a server alone).
#[derive(Debug, Clone)]
pub struct ConnMetrics {
    open: Gauge,
    refused: Counter,
    timeouts: [Counter; ConnTimeout::ALL.len()],
    request_timeout: Counter,
    head_too_large: Counter,
    accept_errors: AcceptErrors,
    http2_streams: Gauge,
}

impl Default for ConnMetrics {
    fn default() -> Self {
        ConnMetrics {
            open: Gauge::default(),
            refused: Counter::default(),
            timeouts: Default::default(),
            request_timeout: Counter::default(),
            head_too_large: Counter::default(),
            accept_errors: AcceptErrors {
                counters: Default::default(),
            },
            http2_streams: Gauge::default(),
        }
    }
}

impl ConnMetrics {
    /// The open-connections gauge: the connection layer increments it at accept (its previous
    /// value decides the cap) and decrements it when the connection closes.
    pub fn open_gauge(&self) -> &Gauge {
        &self.open
    }

    /// Open TCP connections now.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// Counts a connection closed at accept because the cap was reached.
    pub fn record_refused(&self) {
        self.refused.inc();
    }

    /// Connections refused at the cap so far.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }

    /// Counts a connection (or, for `Body`, a request) ended by a timer; a body timeout is
    /// also a refused request (`request_timeout`).
    pub fn record_timeout(&self, kind: ConnTimeout) {
        self.timeouts[kind as usize].inc();
        if kind == ConnTimeout::Body {
            self.request_timeout.inc();
        }
    }

    /// Timeouts of `kind` so far.
    pub fn timeouts(&self, kind: ConnTimeout) -> u64 {
        self.timeouts[kind as usize].get()
    }

    /// Counts a request head refused as too large (431).
    pub fn record_head_too_large(&self) {
        self.head_too_large.inc();
    }

    /// Request heads refused as too large so far.
    pub fn head_too_large(&self) -> u64 {
        self.head_too_large.get()
    }

    /// The counters of failed accepts.
    pub fn accept_errors(&self) -> AcceptErrors {
        self.accept_errors.clone()
    }

    /// The gauge of open HTTP/2 streams (requests in flight on HTTP/2 connections, each SSE
    /// stream among them), each connection's bounded by `limits.max_concurrent_streams`.
    pub fn http2_streams_gauge(&self) -> &Gauge {
        &self.http2_streams
    }
}

/// HTTP-level metrics, plus the registry that renders everything.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rejected: Family<ReasonLabel, Counter>,
    accept_errors: AcceptErrors,
    connection: ConnMetrics,
    /// Open console stats streams (`console.max_watchers` bounds it).
    console_watchers: Gauge,
    /// Open SSE streams: read by the collector, changed by the connection guard.
    pub(crate) connections: Arc<AtomicU64>,
    relay_streams: Family<RelayLabel, Gauge>,
    relay_ended: Family<RelayEndLabel, Counter>,
}

impl Metrics {
    /// Registers every metric, with the hub's counters read from `hub` at scrape time.
    pub fn new(hub: Hub) -> Self {
        let mut registry = Registry::with_prefix("ssehub");
        let rejected = Family::<ReasonLabel, Counter>::default();
        for reason in Reason::ALL {
            // Present from the start, so dashboards and alerts see zeros, not gaps.
            drop(rejected.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            }));
        }
        registry.register(
            "rejected_requests",
            "Requests refused, by reason",
            rejected.clone(),
        );
        let accept_family = Family::<ReasonLabel, Counter>::default();
        let accept_errors = AcceptErrors {
            counters: AcceptError::ALL.map(|error| {
                accept_family
                    .get_or_create(&ReasonLabel {
                        reason: error.as_str(),
                    })
                    .clone()
            }),
        };
        registry.register(
            "accept_errors",
            "Connections the listener failed to accept, by reason (a process_fd_limit or \
             system_fd_limit count means clients waited: the hub was at its file-descriptor limit)",
            accept_family,
        );
        let connection = ConnMetrics {
            open: Gauge::default(),
            refused: Counter::default(),
            timeouts: Default::default(),
            request_timeout: rejected
                .get_or_create(&ReasonLabel {
                    reason: Reason::RequestTimeout.as_str(),
                })
                .clone(),
            head_too_large: rejected
                .get_or_create(&ReasonLabel {
                    reason: Reason::HeadTooLarge.as_str(),
                })
                .clone(),
            accept_errors: accept_errors.clone(),
            http2_streams: Gauge::default(),
        };
        registry.register(
            "http2_open_streams",
            "Open HTTP/2 streams (requests in flight, SSE streams among them) over TLS or h2c; \
             at most limits.max_concurrent_streams per connection",
            connection.http2_streams.clone(),
        );
        registry.register(
            "open_connections",
            "Open TCP connections of any kind: streams, requests, idle keep-alive connections and \
             connections that have not sent a request yet (capped by limits.max_open_connections)",
            connection.open.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed at accept because limits.max_open_connections were open",
            connection.refused.clone(),
        );
        let timeouts = Family::<KindLabel, Counter>::default();
        registry.register(
            "connection_timeouts",
            "Connections (header, idle, tls_handshake) or requests (body) ended by the connection layer's timers, by kind",
            timeouts.clone(),
        );
        // Pre-registered, so dashboards see zeros; ours are the family's counters.
        let connection = ConnMetrics {
            timeouts: ConnTimeout::ALL.map(|kind| {
                timeouts
                    .get_or_create(&KindLabel {
                        kind: kind.as_str(),
                    })
                    .clone()
            }),
            ..connection
        };
        let console_watchers = Gauge::default();
        registry.register(
            "console_watchers",
            "Open streams of the console's stats (/console/stats), bounded by console.max_watchers",
            console_watchers.clone(),
        );
        let connections = Arc::new(AtomicU64::new(0));
        let relay_streams = Family::<RelayLabel, Gauge>::default();
        registry.register(
            "relay_streams",
            "Relayed requests in flight, by relay (capped by its max_streams; an answer counts until the upstream has ended it)",
            relay_streams.clone(),
        );
        let relay_ended = Family::<RelayEndLabel, Counter>::default();
        registry.register(
            "relay_ended",
            "Relayed event-stream answers ended, by relay and reason (done, upstream_error, timeout, max_duration, too_large)",
            relay_ended.clone(),
        );
        registry.register_collector(Box::new(HubCollector {
            hub,
            connections: connections.clone(),
        }));
        Metrics {
            registry,
            rejected,
            accept_errors,
            connection,
            console_watchers,
            connections,
            relay_streams,
            relay_ended,
        }
    }

    /// The gauge of open console stats streams, for the console to move.
    pub(crate) fn console_watchers(&self) -> Gauge {
        self.console_watchers.clone()
    }

    /// Shows every metric of the relay at `prefix` from the start, at zero.
    pub(crate) fn relay_register(&self, prefix: &str, reasons: &[&'static str]) {
        drop(self.relay_streams(prefix));
        for &reason in reasons {
            drop(self.relay_ended.get_or_create(&RelayEndLabel {
                relay: prefix.to_string(),
                reason,
            }));
        }
    }

    /// The in-flight gauge of the relay at `prefix`.
    pub(crate) fn relay_streams(&self, prefix: &str) -> Gauge {
        self.relay_streams
            .get_or_create(&RelayLabel {
                relay: prefix.to_string(),
            })
            .clone()
    }

    /// Counts an answer of the relay at `prefix` ended for `reason`.
    pub(crate) fn relay_ended(&self, prefix: &str, reason: &'static str) {
        self.relay_ended
            .get_or_create(&RelayEndLabel {
                relay: prefix.to_string(),
                reason,
            })
            .inc();
    }

    /// The connection layer's figures, for the server to bump.
    pub fn connection_metrics(&self) -> ConnMetrics {
        self.connection.clone()
    }

    /// Counts a refused request.
    pub fn reject(&self, reason: Reason) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// The counters of failed accepts, for the listener to bump.
    pub fn accept_errors(&self) -> AcceptErrors {
        self.accept_errors.clone()
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[derive(Debug)]
struct HubCollector {
    hub: Hub,
    connections: Arc<AtomicU64>,
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.hub.stats();
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "events_published",
                "Events stored and fanned out",
                &s.published,
            ),
            (
                "events_delivered",
                "Events queued to live subscribers",
                &s.delivered,
            ),
            (
                "delivered_bytes",
                "Bytes queued to live subscribers",
                &s.delivered_bytes,
            ),
            (
                "direct_writes",
                "Live events the fan-out wrote straight to an idle subscriber's socket",
                &s.direct_writes,
            ),
            ("replays", "Subscriptions that replayed history", &s.replays),
            (
                "replayed_events",
                "Events sent from history",
                &s.replayed_events,
            ),
            (
                "gap_events",
                "Gap notices sent (unknown or expired ids)",
                &s.gaps,
            ),
            (
                "slow_consumer_disconnects",
                "Subscribers disconnected because their buffer overflowed",
                &s.slow_disconnects,
            ),
            (
                "store_errors",
                "Publish batches the store refused",
                &s.store_errors,
            ),
        ];
        encode_counters(&mut encoder, &counters)?;
        // A node of a cluster: live-only events (Mercure's subscription updates) between nodes.
        if let Some(relay) = self.hub.relay_stats() {
            let counters: [(&str, &str, &AtomicU64); 3] = [
                (
                    "live_relay_sent",
                    "Live-only events sent to the other nodes of the cluster",
                    &relay.sent,
                ),
                (
                    "live_relay_received",
                    "Live-only events received from the other nodes of the cluster",
                    &relay.received,
                ),
                (
                    "live_relay_dropped",
                    "Live-only events not relayed: too large, a queue full, or Redis unreachable",
                    &relay.dropped,
                ),
            ];
            encode_counters(&mut encoder, &counters)?;
        }
        let gauges: [(&str, &str, i64); 3] = [
            (
                "connections",
                "Open SSE streams",
                to_i64(self.connections.load(Ordering::Relaxed)),
            ),
            (
                "subscriptions",
                "Open subscriptions",
                to_i64(s.subscriptions.load(Ordering::Relaxed)),
            ),
            (
                "active_topics",
                "Topics and patterns with at least one subscriber",
                to_i64(self.hub.active_topics() as u64),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        encode_costs(&self.hub, &mut encoder)?;
        Ok(())
    }
}

/// Encodes `(name, help, value)` counters read from the hub's atomics.
fn encode_counters(
    encoder: &mut DescriptorEncoder<'_>,
    counters: &[(&str, &str, &AtomicU64)],
) -> Result<(), std::fmt::Error> {
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value.load(Ordering::Relaxed));
        counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
    }
    Ok(())
}

/// What clients make the hub hold and do, against the limits that bound it (issue 10,
/// "costs"): replay pages (`limits.replay_page_bytes`), events that are never stored, and
/// compiled URI templates (`limits.template_budget_bytes`).
fn encode_costs(hub: &Hub, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let s = hub.stats();
    let counters: [(&str, &str, &AtomicU64); 7] = [
        (
            "keyed_events",
            "Events stored with a key (tombstones included; the key index holds one entry per \
             retained topic and key, each key at most limits.max_key_bytes)",
            &s.keyed_events,
        ),
        (
            "snapshots",
            "Subscriptions that started with a snapshot of their topics' keys",
            &s.snapshots,
        ),
        (
            "snapshot_events",
            "Events sent in snapshots (read in pages like a replay, limits.replay_page_bytes)",
            &s.snapshot_events,
        ),
        (
            "publisher_id_events",
            "Events stored with a publisher's own id (each in the publisher-id index while \
             retained, at most limits.max_id_bytes)",
            &s.publisher_ids,
        ),
        (
            "live_only_events",
            "Events delivered live only, never stored (Mercure subscription events)",
            &s.live_only,
        ),
        (
            "replayed_bytes",
            "Bytes sent from history",
            &s.replayed_bytes,
        ),
        (
            "replay_pages",
            "Replay pages read from history, each at most limits.replay_page_bytes (or one event)",
            &s.replay_pages,
        ),
    ];
    encode_counters(encoder, &counters)?;
    let templates = hub.templates();
    let gauges: [(&str, &str, i64); 3] = [
        (
            "uri_templates",
            "Distinct Mercure URI templates compiled (each once, shared by its subscribers)",
            to_i64(templates.count() as u64),
        ),
        (
            "uri_template_bytes",
            "Bytes charged for the compiled URI templates (limits.template_budget_bytes bounds it)",
            to_i64(templates.bytes() as u64),
        ),
        (
            "uri_template_budget_bytes",
            "limits.template_budget_bytes",
            to_i64(templates.max_total_bytes() as u64),
        ),
    ];
    for (name, help, value) in gauges {
        let gauge = ConstGauge::new(value);
        gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
