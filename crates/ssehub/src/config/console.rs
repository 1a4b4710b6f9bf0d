//! `[console]`: the console at `/`, the demos at `/demos/` and the hub's stats stream
//! (`ssehub-http`'s `console.rs`).

use serde::{Deserialize, Serialize};
use ssehub_http::ConsoleConfig;

use super::Config;

/// `[console]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Console {
    // Off: `/`, `/demos/` and `/console/*` answer the JSON 404 of any unknown route.
    /// Serve the console at `/`, the demos at `/demos/` and the stats stream: `true` or
    /// `false`. (config: console.enabled)
    #[arg(long = "console", env = "SSEHUB_CONSOLE", value_name = "BOOL", value_parser = parse_switch)]
    pub(crate) enabled: Switch,
    /// The most topics one stats snapshot lists, the most active first.
    #[arg(skip)]
    pub(crate) max_topics: usize,
    /// The most stats streams open at once (503 over_connection_limit above it).
    #[arg(skip)]
    pub(crate) max_watchers: usize,
    /// The most events the stats task reads back per second to count events per topic (a
    /// busier second is counted from its newest events).
    #[arg(skip)]
    pub(crate) scan_events: usize,
}

/// An on/off setting whose flag takes a value (`--console false`): unlike a plain `bool`
/// flag, which can only switch its setting on, it can turn a default that is on off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Switch(pub(crate) bool);

fn parse_switch(value: &str) -> Result<Switch, String> {
    match value {
        "true" | "on" | "1" => Ok(Switch(true)),
        "false" | "off" | "0" => Ok(Switch(false)),
        other => Err(format!("{other:?} is not true or false")),
    }
}

impl Default for Console {
    fn default() -> Self {
        let defaults = ConsoleConfig::default();
        Console {
            enabled: Switch(defaults.enabled),
            max_topics: defaults.max_topics,
            max_watchers: defaults.max_watchers,
            scan_events: defaults.scan_events,
        }
    }
}

impl Config {
    /// The console's settings, showing `[history]` as the hub's retention.
    pub(crate) fn console(&self) -> ConsoleConfig {
        let c = &self.console;
        ConsoleConfig {
            enabled: c.enabled.0,
            max_topics: c.max_topics,
            max_watchers: c.max_watchers,
            scan_events: c.scan_events,
            retention: serde_json::to_value(&self.history).unwrap_or_default(),
        }
    }
}
