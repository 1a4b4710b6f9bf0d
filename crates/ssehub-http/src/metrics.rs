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
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use ssehub_core::Hub;

use crate::AppState;
use crate::error::Reason;

/// The `reason` label of refused requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
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

/// HTTP-level metrics, plus the registry that renders everything.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rejected: Family<ReasonLabel, Counter>,
    accept_errors: AcceptErrors,
    /// Open SSE streams: read by the collector, changed by the connection guard.
    pub(crate) connections: Arc<AtomicU64>,
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
        let connections = Arc::new(AtomicU64::new(0));
        registry.register_collector(Box::new(HubCollector {
            hub,
            connections: connections.clone(),
        }));
        Metrics {
            registry,
            rejected,
            accept_errors,
            connections,
        }
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
        let counters: [(&str, &str, &AtomicU64); 8] = [
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
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
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

/// What clients make the hub hold and do, against the limits that bound it (issue 10,
/// "costs"): replay pages (`limits.replay_page_bytes`), events that are never stored, and
/// compiled URI templates (`limits.template_budget_bytes`).
fn encode_costs(hub: &Hub, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let s = hub.stats();
    let counters: [(&str, &str, &AtomicU64); 3] = [
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
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value.load(Ordering::Relaxed));
        counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
    }
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
