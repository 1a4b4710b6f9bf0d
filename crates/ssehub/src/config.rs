//! The hub's configuration file: one typed struct, nested by concern, every field defaulted.
//!
//! Semantics of the hub live here (history, limits, streams, CORS, shutdown); process knobs
//! (listen address, log level, which store) are command-line flags. Flags given on the command
//! line or as `SSEHUB_*` variables override the file. `ssehub serve --check-config` validates
//! and prints the result; `ssehub serve --print-default-config` prints this file's defaults.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use ssehub_core::{HubConfig, Retention};
use ssehub_http::HttpConfig;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// What history the in-memory store keeps.
    pub(crate) history: History,
    /// Request and connection limits.
    pub(crate) limits: Limits,
    /// Stream behaviour.
    pub(crate) sse: Sse,
    /// Cross-origin access.
    pub(crate) cors: Cors,
    /// Shutdown.
    pub(crate) shutdown: Shutdown,
}

/// `[history]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct History {
    /// The most events kept; the oldest go first.
    pub(crate) max_events: usize,
    /// The most bytes of events kept.
    pub(crate) max_bytes: usize,
}

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    /// The largest request body, in bytes (413 above).
    pub(crate) max_body_bytes: usize,
    /// The most SSE streams open at once (503 above).
    pub(crate) max_connections: usize,
    /// The most topics in one subscription.
    pub(crate) max_topics_per_subscription: usize,
    /// The most events in one `POST /publish`.
    pub(crate) max_batch_events: usize,
    /// The most bytes queued for one subscriber before it is disconnected as too slow (it
    /// then resumes from history).
    pub(crate) subscriber_buffer_bytes: usize,
}

/// `[sse]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Sse {
    /// Seconds between keep-alive comments on idle streams; 0 for none.
    pub(crate) heartbeat_secs: u64,
    /// The reconnection time announced at the start of each stream, in milliseconds.
    pub(crate) retry_ms: u64,
    /// Random extra milliseconds added to `retry_ms` per stream.
    pub(crate) retry_jitter_ms: u64,
}

/// `[cors]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cors {
    /// Allowed origins (`*` for any); empty for none.
    pub(crate) origins: Vec<String>,
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Shutdown {
    /// Seconds to let streams and requests finish after SIGTERM before closing them by force.
    pub(crate) grace_secs: u64,
}

impl Default for History {
    fn default() -> Self {
        let r = Retention::default();
        History {
            max_events: r.max_events,
            max_bytes: r.max_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let h = HttpConfig::default();
        Limits {
            max_body_bytes: h.max_body_bytes,
            max_connections: h.max_connections,
            max_topics_per_subscription: h.max_topics_per_subscription,
            max_batch_events: h.max_batch_events,
            subscriber_buffer_bytes: HubConfig::default().subscriber_buffer_bytes,
        }
    }
}

impl Default for Sse {
    fn default() -> Self {
        let h = HttpConfig::default();
        Sse {
            heartbeat_secs: 15,
            retry_ms: h.retry_ms,
            retry_jitter_ms: h.retry_jitter_ms,
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { grace_secs: 10 }
    }
}

impl Config {
    /// Reads and parses a file.
    pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Checks values that parse but make no sense.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let checks = [
            (
                self.history.max_events == 0,
                "history.max_events must be at least 1",
            ),
            (
                self.limits.max_body_bytes == 0,
                "limits.max_body_bytes must be at least 1",
            ),
            (
                self.limits.max_connections == 0,
                "limits.max_connections must be at least 1",
            ),
            (
                self.limits.max_topics_per_subscription == 0,
                "limits.max_topics_per_subscription must be at least 1",
            ),
            (
                self.limits.max_batch_events == 0,
                "limits.max_batch_events must be at least 1",
            ),
            (
                self.limits.subscriber_buffer_bytes < 1024,
                "limits.subscriber_buffer_bytes must be at least 1024",
            ),
        ];
        for (bad, message) in checks {
            if bad {
                bail!("invalid configuration: {message}");
            }
        }
        for origin in &self.cors.origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!(
                    "invalid configuration: cors origin {origin:?} must be * or start with http:// or https://"
                );
            }
        }
        Ok(())
    }

    pub(crate) fn retention(&self) -> Retention {
        Retention {
            max_events: self.history.max_events,
            max_bytes: self.history.max_bytes,
        }
    }

    pub(crate) fn hub(&self) -> HubConfig {
        HubConfig {
            subscriber_buffer_bytes: self.limits.subscriber_buffer_bytes,
            heartbeat: (self.sse.heartbeat_secs > 0)
                .then(|| Duration::from_secs(self.sse.heartbeat_secs)),
            ..HubConfig::default()
        }
    }

    pub(crate) fn http(&self) -> HttpConfig {
        HttpConfig {
            max_body_bytes: self.limits.max_body_bytes,
            max_connections: self.limits.max_connections,
            max_topics_per_subscription: self.limits.max_topics_per_subscription,
            max_batch_events: self.limits.max_batch_events,
            retry_ms: self.sse.retry_ms,
            retry_jitter_ms: self.sse.retry_jitter_ms,
            cors_origins: self.cors.origins.clone(),
        }
    }

    /// The file as TOML.
    pub(crate) fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_and_validates() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(toml::from_str::<Config>(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[limits]\nmax_body = 1\n").is_err());
        assert!(toml::from_str::<Config>("[nope]\n").is_err());
    }

    #[test]
    fn nonsense_values_are_refused() {
        let c: Config = toml::from_str("[limits]\nmax_connections = 0\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_connections")
        );
        let c: Config = toml::from_str("[cors]\norigins = [\"example.com\"]\n").unwrap();
        assert!(c.validate().is_err());
    }
}
