//! `[[relay]]` (and `--relay PREFIX=URL`): resumable POST streams (`ssehub-http`'s `relay.rs`).
//!
//! Each table is one relay, its limits beside it, each defaulted. The answers are kept in
//! `relay/<capability>` topics, for which this file also makes the store's retention rule:
//! see [`Config::relay_topic_rule`].

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use ssehub_http::RelayConfig;

use super::{Config, TopicRule};

/// One `[[relay]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Relay {
    /// The hub's path prefix (`/ai`): a request to `/ai/<path>` goes to `<upstream>/<path>`.
    pub(crate) prefix: String,
    /// The upstream's base URL (`http://127.0.0.1:9000`).
    pub(crate) upstream: String,
    /// The most relayed requests in flight at once (an answer counts until the upstream ends
    /// it); 503 over_relay_limit above it.
    #[serde(default = "defaults::max_streams")]
    pub(crate) max_streams: usize,
    /// The longest one answer may stream, in seconds (then ends with `max_duration`).
    #[serde(default = "defaults::max_duration_secs")]
    pub(crate) max_duration_secs: u64,
    /// The longest a connection to the upstream may take, in milliseconds (502 after it).
    #[serde(default = "defaults::connect_timeout_ms")]
    pub(crate) connect_timeout_ms: u64,
    /// The longest the upstream may be silent, in seconds: before its answer (504) and
    /// between two chunks of it (the answer ends with `timeout`).
    #[serde(default = "defaults::idle_timeout_secs")]
    pub(crate) idle_timeout_secs: u64,
    /// The most bytes of one upstream answer (then it ends with `too_large`).
    #[serde(default = "defaults::max_answer_bytes")]
    pub(crate) max_answer_bytes: u64,
    /// The largest request body forwarded (413 above it).
    #[serde(default = "defaults::max_request_bytes")]
    pub(crate) max_request_bytes: usize,
    /// How long an answer is kept after it ended, in seconds (disk store and cluster: then
    /// it expires).
    #[serde(default = "defaults::keep_secs")]
    pub(crate) keep_secs: u64,
}

/// The defaults, from the HTTP layer's (`keep_secs`: an hour).
mod defaults {
    use ssehub_http::RelayConfig;

    fn d() -> RelayConfig {
        RelayConfig::new("", "")
    }
    pub(super) fn max_streams() -> usize {
        d().max_streams
    }
    pub(super) fn max_duration_secs() -> u64 {
        d().max_duration.as_secs()
    }
    pub(super) fn connect_timeout_ms() -> u64 {
        u64::try_from(d().connect_timeout.as_millis()).unwrap_or(u64::MAX)
    }
    pub(super) fn idle_timeout_secs() -> u64 {
        d().idle_timeout.as_secs()
    }
    pub(super) fn max_answer_bytes() -> u64 {
        d().max_answer_bytes
    }
    pub(super) fn max_request_bytes() -> usize {
        d().max_request_bytes
    }
    pub(super) fn keep_secs() -> u64 {
        3600
    }
}

impl Relay {
    /// A relay from `--relay PREFIX=URL`, with the default limits.
    pub(crate) fn parse_flag(flag: &str) -> anyhow::Result<Relay> {
        let Some((prefix, upstream)) = flag.split_once('=') else {
            bail!("--relay {flag:?}: expected PREFIX=URL, like /ai=http://127.0.0.1:9000");
        };
        Ok(Relay {
            prefix: prefix.to_string(),
            upstream: upstream.to_string(),
            max_streams: defaults::max_streams(),
            max_duration_secs: defaults::max_duration_secs(),
            connect_timeout_ms: defaults::connect_timeout_ms(),
            idle_timeout_secs: defaults::idle_timeout_secs(),
            max_answer_bytes: defaults::max_answer_bytes(),
            max_request_bytes: defaults::max_request_bytes(),
            keep_secs: defaults::keep_secs(),
        })
    }

    /// The HTTP layer's settings for this relay.
    pub(crate) fn http(&self) -> RelayConfig {
        RelayConfig {
            prefix: self.prefix.clone(),
            upstream: self.upstream.clone(),
            max_streams: self.max_streams,
            max_duration: Duration::from_secs(self.max_duration_secs),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_answer_bytes: self.max_answer_bytes,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

impl Config {
    /// Adds the `--relay` flags: a flag for a prefix the file has replaces its upstream and
    /// keeps its limits.
    pub(crate) fn add_relay_flags(&mut self, flags: &[String]) -> anyhow::Result<()> {
        for flag in flags {
            let relay = Relay::parse_flag(flag)?;
            match self.relay.iter_mut().find(|r| r.prefix == relay.prefix) {
                Some(existing) => existing.upstream = relay.upstream,
                None => self.relay.push(relay),
            }
        }
        Ok(())
    }

    /// Checks every relay.
    pub(crate) fn validate_relays(&self) -> anyhow::Result<()> {
        for relay in &self.relay {
            relay
                .http()
                .validate()
                .map_err(anyhow::Error::msg)
                .context("invalid configuration")?;
            if relay.max_duration_secs == 0 || relay.idle_timeout_secs == 0 {
                bail!(
                    "invalid configuration: relay {}: max_duration_secs and idle_timeout_secs must be at least 1",
                    relay.prefix
                );
            }
        }
        Ok(())
    }

    /// The retention rule of the relays' answers, first of the per-topic rules, when there
    /// are relays: events of `relay/*` topics are kept for the longest answer
    /// (`max_duration_secs`) plus `keep_secs`, so that every answer is whole for at least
    /// `keep_secs` after its end, and then expires (the longest of those of all relays, since
    /// they share the `relay/` topics).
    pub(crate) fn relay_topic_rule(&self) -> Option<TopicRule> {
        let age = self
            .relay
            .iter()
            .map(|r| r.max_duration_secs.saturating_add(r.keep_secs))
            .max()?;
        Some(TopicRule {
            pattern: format!("{}*", ssehub_http::TOPIC_PREFIX),
            max_events: None,
            max_bytes: None,
            max_age_secs: Some(age),
            keep: Default::default(),
            tombstone_grace_secs: None,
        })
    }

    /// Every per-topic retention rule, in the order they apply: the relays' first, then
    /// `[[history.topics]]`.
    pub(crate) fn topic_rules(&self) -> Vec<TopicRule> {
        self.relay_topic_rule()
            .into_iter()
            .chain(self.history.topics.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_flags() {
        let mut config: Config = toml::from_str(
            "[[relay]]\nprefix = \"/ai\"\nupstream = \"http://127.0.0.1:1\"\nmax_streams = 3\nkeep_secs = 5\n",
        )
        .unwrap();
        config
            .add_relay_flags(&[
                "/ai=http://127.0.0.1:2".into(),
                "/b=http://127.0.0.1:3".into(),
            ])
            .unwrap();
        config.validate().unwrap();
        assert_eq!(config.relay.len(), 2);
        assert_eq!(config.relay[0].upstream, "http://127.0.0.1:2");
        assert_eq!(config.relay[0].max_streams, 3);
        assert_eq!(config.http().relays[1].prefix, "/b");
        let rule = config.relay_topic_rule().unwrap();
        assert_eq!(rule.pattern, "relay/*");
        assert_eq!(rule.max_age_secs, Some(600 + 3600));
        assert_eq!(config.topic_rules().len(), 1);
        assert!(config.add_relay_flags(&["nope".into()]).is_err());
        config.relay[1].prefix = "/topics".into();
        assert!(config.validate().is_err());
    }
}
