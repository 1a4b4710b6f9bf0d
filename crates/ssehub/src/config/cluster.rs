//! `[cluster]`: run as one node of a cluster of hubs over Redis (docs/cluster.md). Without a
//! URL the hub is alone, on the store `--store` names, exactly as before.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::Config;

/// `[cluster]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cluster {
    // Replaces --store: history is in Redis. The URL may hold Redis's password, so `--help`
    // does not show the variable's value, and logs and errors show it without the password.
    /// Run as a node of a cluster over Redis, `redis://HOST:PORT[/DB]` (or, through Redis
    /// Sentinel, `redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME[/DB]`): every node with
    /// the same URL and cluster.name shares one history, one order and one set of ids.
    /// (config: cluster.url)
    #[arg(
        long = "cluster",
        env = "SSEHUB_CLUSTER",
        value_name = "REDIS_URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// The cluster's name, so that several clusters can share one Redis. (config: cluster.name)
    #[arg(
        long = "cluster-name",
        env = "SSEHUB_CLUSTER_NAME",
        value_name = "CLUSTER_NAME"
    )]
    pub(crate) name: String,
    /// Redis replicas that must have each publish (`WAIT`) before it is answered; 0 for none.
    /// Fewer within `replica_timeout_ms`: the publish gets 503 (the primary has the event).
    #[arg(skip)]
    pub(crate) min_replicas: u32,
    /// How long a publish waits for `min_replicas`, in milliseconds.
    #[arg(skip)]
    pub(crate) replica_timeout_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            url: None,
            name: "ssehub".to_string(),
            min_replicas: 0,
            replica_timeout_ms: 1000,
        }
    }
}

impl Config {
    /// Where the cluster's store is and what it keeps (`[history]`'s bounds and its
    /// `[[history.topics]]` rules, which every node of the cluster must share), when this hub
    /// is a node of one.
    ///
    /// # Errors
    ///
    /// A URL that is not `redis://…` or `redis+sentinel://…`, a name that would break the
    /// cluster's keys, or an invalid rule pattern.
    pub(crate) fn cluster_options(&self) -> anyhow::Result<Option<ssehub_cluster::ClusterOptions>> {
        let Some(url) = &self.cluster.url else {
            return Ok(None);
        };
        if !url.starts_with("redis://") && !url.starts_with("redis+sentinel://") {
            bail!(
                "invalid configuration: cluster.url must be redis://HOST:PORT[/DB] or redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME[/DB]"
            );
        }
        let name = &self.cluster.name;
        if name.is_empty() || name.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            bail!("invalid configuration: cluster.name must be non-empty, without braces");
        }
        let topics = self
            .topic_rules()
            .iter()
            .map(|rule| {
                Ok(ssehub_cluster::ClusterTopicRule {
                    pattern: rule.pattern()?,
                    max_events: rule.max_events,
                    max_bytes: rule.max_bytes,
                    max_age: rule.max_age_secs.map(Duration::from_secs),
                    compaction: rule.compaction(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(ssehub_cluster::ClusterOptions {
            url: url.clone(),
            name: name.clone(),
            retention: ssehub_cluster::ClusterRetention {
                max_events: Some(self.history.max_events),
                max_bytes: Some(self.history.max_bytes),
                max_age: self.history.max_age_secs.map(Duration::from_secs),
                topics,
                ..ssehub_cluster::ClusterRetention::default()
            },
            min_replicas: self.cluster.min_replicas,
            replica_timeout: Duration::from_millis(self.cluster.replica_timeout_ms),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Config;

    #[test]
    fn per_topic_rules_reach_the_cluster() {
        let config: Config = toml::from_str(
            "[cluster]\nurl = \"redis://127.0.0.1:6379\"\n\
             [[history.topics]]\npattern = \"chat/*\"\nmax_events = 5\nmax_age_secs = 60\n\
             [[history.topics]]\npattern = \"**\"\nmax_bytes = 100\n",
        )
        .unwrap();
        let retention = config.cluster_options().unwrap().unwrap().retention;
        let rules: Vec<_> = retention
            .topics
            .iter()
            .map(|r| (r.pattern.as_str(), r.max_events, r.max_bytes, r.max_age))
            .collect();
        assert_eq!(
            rules,
            [
                ("chat/*", Some(5), None, Some(Duration::from_secs(60))),
                ("**", None, Some(100), None),
            ]
        );
        let bad: Config = toml::from_str(
            "[cluster]\nurl = \"redis://h\"\n[[history.topics]]\npattern = \"a*\"\n",
        )
        .unwrap();
        let error = bad.cluster_options().unwrap_err().to_string();
        assert!(error.contains("history.topics pattern"), "{error}");
    }
}
