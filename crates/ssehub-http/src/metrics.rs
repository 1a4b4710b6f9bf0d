//! `GET /metrics`: Prometheus text exposition.
//!
//! The hub's own counters live in `ssehub-core` as atomics (no metrics library down there);
//! a [`Collector`] reads them at scrape time. HTTP-level figures (open streams, refused
//! requests by reason) are owned here. Metric names are constants in this file only.

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

/// HTTP-level metrics, plus the registry that renders everything.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rejected: Family<ReasonLabel, Counter>,
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
        let connections = Arc::new(AtomicU64::new(0));
        registry.register_collector(Box::new(HubCollector {
            hub,
            connections: connections.clone(),
        }));
        Metrics {
            registry,
            rejected,
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
        Ok(())
    }
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
