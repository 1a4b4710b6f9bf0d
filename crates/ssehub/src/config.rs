//! The hub's configuration file: one typed struct, nested by concern, every field defaulted.
//!
//! Semantics of the hub live here (history, limits, streams, CORS, shutdown); process knobs
//! (listen address, log level, which store) are command-line flags only. Flags given on the
//! command line or as `SSEHUB_*` variables override the file. `ssehub serve --check-config`
//! validates and prints the result; `ssehub serve --print-default-config` prints this file's
//! defaults.
//!
//! # One place per setting
//!
//! Each section (`[history]`, `[limits]`, …) is one struct, and each setting is one field of
//! it. The field's name is its TOML key (serde), its section's `Default` is its default, and
//! its doc comment is both its documentation and, when it has a flag, its `--help` text. Its
//! `#[arg(...)]` gives its flag and `SSEHUB_*` variable, or `#[arg(skip)]` says that it has
//! none (`//` comments beside it hold what `--help` need not say). `ssehub serve` (`cli.rs`)
//! flattens each section's flags as an [`Overrides`], which lays the values given over the
//! file with clap's own `update_from_arg_matches`. So a new setting is its field, its default
//! and the code that uses it: no line in `cli.rs`, none in the merge. Only a new section adds
//! a field to `Config` and one to `ServeArgs`, with its line in `ServeArgs::override_config`.
//!
//! Why clap and serde on the same structs rather than `figment`: clap already holds the flags,
//! their variables and `--help`, and serde the file with `deny_unknown_fields`; deriving both
//! on one struct joins them without a new dependency or a second model of the settings.
//! figment would merge the file with an environment provider keyed by name, but our variables
//! do not spell their TOML path (`SSEHUB_HISTORY_MAX_EVENTS` is `history.max_events`,
//! `SSEHUB_CORS_ORIGINS` is a comma list for `cors.origins`), other `SSEHUB_*` variables (the
//! client's `SSEHUB_URL`) are not settings, and clap would still have to declare every flag
//! and variable for `--help`: each setting would again be named in several places.
//!
//! The precedence, for every setting: a flag, then its variable (clap), then the file, then
//! the section's default. A setting's default is never taken from clap, so an absent flag
//! never hides the file; an on/off flag (`--allow-anonymous-publish`) can only switch its
//! setting on.

mod cluster;
mod console;
mod overrides;
mod relay;

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use ssehub_core::{HubConfig, Retention};
use ssehub_http::HttpConfig;

pub(crate) use cluster::Cluster;
pub(crate) use console::Console;
pub(crate) use overrides::Overrides;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// What history is kept.
    pub(crate) history: History,
    /// How the durable store writes.
    pub(crate) storage: Storage,
    /// Request and connection limits.
    pub(crate) limits: Limits,
    /// Stream behaviour.
    pub(crate) sse: Sse,
    /// Cross-origin access.
    pub(crate) cors: Cors,
    /// Shutdown.
    pub(crate) shutdown: Shutdown,
    /// Who may publish and subscribe.
    pub(crate) auth: Auth,
    /// The Mercure protocol at `/.well-known/mercure`.
    pub(crate) mercure: Mercure,
    /// Which requests the hub believes: the `Host` names it answers to, a reverse proxy.
    pub(crate) http: Http,
    /// A cluster of hubs over Redis.
    pub(crate) cluster: Cluster,
    /// The console, the demos and the stats stream.
    pub(crate) console: Console,
    /// Relays: resumable POST streams (`[[relay]]` tables; `--relay PREFIX=URL`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) relay: Vec<relay::Relay>,
    /// HTTPS: the certificate and key.
    pub(crate) tls: Tls,
}

/// `[tls]`: HTTPS, with HTTP/2 (ALPN `h2`) and HTTP/1.1. Both or neither (checked when the hub
/// starts, so that `--check-config` shows each as given). The files are read again on SIGHUP
/// (a renewed certificate, no stream dropped; a bad file keeps the old one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Tls {
    /// Serve HTTPS with this certificate chain (PEM, the hub's certificate first); needs
    /// --tls-key. (config: tls.cert)
    #[arg(long = "tls-cert", env = "SSEHUB_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). (config: tls.key)
    #[arg(long = "tls-key", env = "SSEHUB_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<std::path::PathBuf>,
}

/// `[http]`: where requests come from (see `ssehub-http`'s `trust.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Http {
    // A request for another name gets 421, against DNS rebinding. The loopback names are
    // `localhost`, `127.0.0.1` and `[::1]`.
    /// A Host name the hub answers to: `name`, `name:port` or `*` (repeat, or comma-separate
    /// in the variable). Default: loopback names on a loopback listener, any otherwise.
    /// (config: http.allowed_hosts)
    #[arg(
        long = "allowed-host",
        env = "SSEHUB_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub(crate) allowed_hosts: Vec<String>,
    // `none` by default: a request carrying one of those headers is then never local.
    /// The reverse proxy in front of the hub: the header it sets to the client's address.
    /// Without it, a request carrying Forwarded, X-Forwarded-For or Via may not publish
    /// anonymously. (config: http.trusted_proxy)
    #[arg(long, env = "SSEHUB_TRUSTED_PROXY", value_enum)]
    pub(crate) trusted_proxy: TrustedProxy,
}

/// `[http] trusted_proxy`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TrustedProxy {
    /// No proxy is trusted.
    #[default]
    None,
    /// The proxy sets `Forwarded: for=…` (RFC 7239).
    Forwarded,
    /// The proxy sets `X-Forwarded-For`.
    XForwardedFor,
}

/// `[mercure]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Mercure {
    /// Active subscriptions: a private update on
    /// `/.well-known/mercure/subscriptions/{topic}/{subscriber}` when a Mercure subscription
    /// starts and ends, and the `/.well-known/mercure/subscriptions` API.
    #[arg(skip)]
    pub(crate) subscriptions: bool,
}

impl Default for Mercure {
    fn default() -> Self {
        Mercure {
            subscriptions: HttpConfig::default().mercure_subscriptions,
        }
    }
}

/// `[auth]`: JWT keys and the anonymous rules. Keys are secrets: prefer the
/// `SSEHUB_PUBLISHER_KEY` / `SSEHUB_SUBSCRIBER_KEY` variables or key files to the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Auth {
    /// HS256 secret of publisher tokens (config: auth.publisher_key).
    #[arg(long, env = "SSEHUB_PUBLISHER_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) publisher_key: Option<String>,
    /// A file with the publisher key: a PEM public key (with `publisher_algorithm`) or a JWKS
    /// document (`.json`).
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) publisher_key_file: Option<std::path::PathBuf>,
    /// The algorithm of a PEM publisher key: RS256, ES256 or EdDSA.
    #[arg(skip)]
    pub(crate) publisher_algorithm: String,
    /// HS256 secret of subscriber tokens (config: auth.subscriber_key).
    #[arg(long, env = "SSEHUB_SUBSCRIBER_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) subscriber_key: Option<String>,
    /// A file with the subscriber key (PEM or JWKS), as for publishers.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) subscriber_key_file: Option<std::path::PathBuf>,
    /// The algorithm of a PEM subscriber key.
    #[arg(skip)]
    pub(crate) subscriber_algorithm: String,
    /// Subscribers without a token may receive public events.
    #[arg(skip)]
    pub(crate) anonymous_subscribe: bool,
    // Publishing without a token is always allowed on loopback when no publisher key is set,
    // for development.
    /// Let anyone publish without a token on a non-loopback address.
    /// (config: auth.allow_anonymous_publish)
    #[arg(long, env = "SSEHUB_ALLOW_ANONYMOUS_PUBLISH")]
    pub(crate) allow_anonymous_publish: bool,
    /// The cookie that may hold a token (Mercure's name by default).
    #[arg(skip)]
    pub(crate) cookie_name: String,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            publisher_key: None,
            publisher_key_file: None,
            publisher_algorithm: "HS256".into(),
            subscriber_key: None,
            subscriber_key_file: None,
            subscriber_algorithm: "HS256".into(),
            anonymous_subscribe: true,
            allow_anonymous_publish: false,
            cookie_name: "mercureAuthorization".into(),
        }
    }
}

/// Loads one role's keys from a secret or a file.
fn key_set(
    role: &str,
    secret: Option<&String>,
    file: Option<&std::path::PathBuf>,
    algorithm: &str,
) -> anyhow::Result<Option<ssehub_http::KeySet>> {
    match (secret, file) {
        (Some(_), Some(_)) => {
            bail!("invalid configuration: set {role}_key or {role}_key_file, not both")
        }
        (Some(secret), None) => {
            if secret.len() < 32 {
                bail!(
                    "invalid configuration: {role}_key must be at least 32 bytes (an HS256 secret)"
                );
            }
            Ok(Some(ssehub_http::KeySet::hmac(secret.as_bytes())))
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {role}_key_file {}", path.display()))?;
            let set = if text.trim_start().starts_with('{') {
                ssehub_http::KeySet::jwks(&text)
            } else {
                let alg: jsonwebtoken::Algorithm = algorithm.parse().map_err(|_| {
                    anyhow::anyhow!("invalid configuration: {role}_algorithm {algorithm:?}")
                })?;
                ssehub_http::KeySet::pem(alg, text.as_bytes())
            };
            set.map(Some)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {role}_key_file: {e}"))
        }
        (None, None) => Ok(None),
    }
}

/// `[history]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct History {
    // The oldest go first.
    /// The most events kept in history. (config: history.max_events)
    #[arg(
        long = "history-max-events",
        env = "SSEHUB_HISTORY_MAX_EVENTS",
        value_name = "HISTORY_MAX_EVENTS"
    )]
    pub(crate) max_events: u64,
    /// The most bytes of events kept.
    #[arg(skip)]
    pub(crate) max_bytes: u64,
    /// The oldest event kept, in seconds (disk store only); unset keeps events of any age.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_age_secs: Option<u64>,
    /// Per-topic bounds (disk store and cluster): `[[history.topics]]` tables with a
    /// `pattern` and any of `max_events`, `max_bytes`, `max_age_secs`. The first matching
    /// rule applies.
    #[arg(skip)]
    pub(crate) topics: Vec<TopicRule>,
}

/// `[[history.topics]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicRule {
    /// The topics the rule applies to (`*` and a trailing `**` allowed).
    pub(crate) pattern: String,
    /// The most events kept per topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_events: Option<u64>,
    /// The most bytes kept per topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_bytes: Option<u64>,
    /// The oldest event kept per topic, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age_secs: Option<u64>,
    /// `"latest-per-key"`: log compaction, only the newest event of each key is kept (events
    /// without a key are kept under the other bounds). `"all"` (the default): every event.
    #[serde(default, skip_serializing_if = "Keep::is_all")]
    pub(crate) keep: Keep,
    /// Under `keep = "latest-per-key"`, how long a tombstone (a deleted key) is kept, in
    /// seconds, so that subscribers that were away learn of the deletion when they resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tombstone_grace_secs: Option<u64>,
}

/// What a `[[history.topics]]` rule keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Keep {
    /// Every event, under the rule's bounds.
    #[default]
    All,
    /// Only the newest event of each key (log compaction).
    LatestPerKey,
}

impl Keep {
    fn is_all(&self) -> bool {
        *self == Keep::All
    }
}

/// How long a tombstone is kept by default under `keep = "latest-per-key"`: a day, so that a
/// client away overnight still learns of a deletion.
pub(crate) const DEFAULT_TOMBSTONE_GRACE_SECS: u64 = 86_400;

impl TopicRule {
    /// The rule's compaction, if it keeps the newest event per key.
    pub(crate) fn compaction(&self) -> Option<Duration> {
        (self.keep == Keep::LatestPerKey).then(|| {
            Duration::from_secs(
                self.tombstone_grace_secs
                    .unwrap_or(DEFAULT_TOMBSTONE_GRACE_SECS),
            )
        })
    }

    /// The rule's pattern, checked.
    pub(crate) fn pattern(&self) -> anyhow::Result<ssehub_core::Pattern> {
        ssehub_core::Pattern::new(&self.pattern).with_context(|| {
            format!(
                "invalid configuration: history.topics pattern {:?}",
                self.pattern
            )
        })
    }
}

/// When appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fsync {
    /// fsync before acknowledging each publish batch: an acknowledged event survives a crash
    /// of the process or the machine.
    Always,
    /// fsync every `fsync_interval_ms`: faster, but a crash of ssehub (SIGKILL, OOM kill,
    /// abort) or of the machine loses the events acknowledged since the last fsync (up to
    /// `fsync_interval_ms` of them). Their ids are never given again: the next start takes a
    /// new log id, so every client resuming from an older id gets the gap notice and the
    /// retained history. A clean stop (SIGTERM) loses nothing and keeps the log id.
    Interval,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Storage {
    /// When publishes are fsync'd: `always` (before the 200; the default: a crash of the
    /// process or the machine loses nothing acknowledged) or `interval` (every
    /// storage.fsync_interval_ms: a crash of the process or the machine loses what was
    /// acknowledged since the last fsync; the next start takes a new log id, so clients
    /// resuming get the gap notice, never a silent skip). (config: storage.fsync)
    #[arg(long, env = "SSEHUB_FSYNC", value_enum)]
    pub(crate) fsync: Fsync,
    /// The longest time between fsyncs under `interval`, in milliseconds.
    #[arg(skip)]
    pub(crate) fsync_interval_ms: u64,
    /// Recent events kept in memory to serve reconnects without reading the disk.
    #[arg(skip)]
    pub(crate) tail_cache_events: usize,
    /// The most bytes (of SSE encoding) in that cache.
    #[arg(skip)]
    pub(crate) tail_cache_bytes: usize,
    /// Keep redb's allocator state with every commit, so the first start after a crash is
    /// instant instead of walking the whole file (at the cost of a second fsync per commit).
    #[arg(skip)]
    pub(crate) quick_repair: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            fsync: Fsync::Always,
            fsync_interval_ms: 100,
            tail_cache_events: 10_000,
            tail_cache_bytes: 64 << 20,
            quick_repair: true,
        }
    }
}

/// The largest `limits.max_id_bytes` accepted: an id is stored with a 16-bit length (the
/// disk store's record), and one this long already costs every copy of its event.
const MAX_ID_BYTES_CAP: usize = 4096;

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    // A larger request gets 413.
    /// The largest request body, and the largest event once SSE-encoded, in bytes.
    /// (config: limits.max_body_bytes)
    #[arg(long, env = "SSEHUB_MAX_BODY_BYTES")]
    pub(crate) max_body_bytes: usize,
    // One stream more gets 503.
    /// The most SSE streams open at once. (config: limits.max_connections)
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS")]
    pub(crate) max_connections: usize,
    /// The most topics in one subscription.
    #[arg(skip)]
    pub(crate) max_topics_per_subscription: usize,
    /// The most events in one `POST /publish`.
    #[arg(skip)]
    pub(crate) max_batch_events: usize,
    /// The longest event id a publisher may give (`?id=`, Mercure's `id`), in bytes (400
    /// above it; at most 4096): the store's index holds one per retained event that has one.
    #[arg(skip)]
    pub(crate) max_id_bytes: usize,
    /// The longest key a publisher may give (`?key=`), in bytes (400 above it; at most 4096):
    /// the store's key index holds one per retained (topic, key).
    #[arg(skip)]
    pub(crate) max_key_bytes: usize,
    // A subscriber cut off resumes from history.
    /// Bytes queued per subscriber before it is cut off as too slow; at least
    /// --max-body-bytes. (config: limits.subscriber_buffer_bytes)
    #[arg(long, env = "SSEHUB_SUBSCRIBER_BUFFER_BYTES")]
    pub(crate) subscriber_buffer_bytes: usize,
    /// The largest request head, in bytes (431 above; at least 8192). The same for every
    /// request of a connection.
    #[arg(skip)]
    pub(crate) max_head_bytes: usize,
    /// The most header fields in one request (431 above).
    #[arg(skip)]
    pub(crate) max_headers: usize,
    /// Milliseconds a client may take to send a request head, from its first byte (from the
    /// accept for a new connection): slowloris heads are closed after it.
    #[arg(skip)]
    pub(crate) header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay open with no request in flight (keep-alive, HTTP/2
    /// with no stream). An open SSE stream is a request in flight.
    #[arg(skip)]
    pub(crate) idle_timeout_ms: u64,
    /// Milliseconds a client may take to send a request body (408 and closed after it).
    #[arg(skip)]
    pub(crate) body_read_timeout_ms: u64,
    /// The most TCP connections open at once, of any kind (closed at accept above it). Keep
    /// it under the open-file limit.
    #[arg(skip)]
    pub(crate) max_open_connections: usize,
    /// The most HTTP/2 streams (SSE streams and requests) open at once on one connection;
    /// more are refused (`REFUSED_STREAM`).
    #[arg(skip)]
    pub(crate) max_concurrent_streams: u32,
    /// Milliseconds a TLS client may take to finish its handshake, from the accept.
    #[arg(skip)]
    pub(crate) tls_handshake_timeout_ms: u64,
    /// The most bytes of one replay page (one event may be larger): what a subscriber that
    /// replays history, however slowly it reads, makes the hub hold.
    #[arg(skip)]
    pub(crate) replay_page_bytes: usize,
    /// The longest Mercure URI template a subscriber may send, in bytes.
    #[arg(skip)]
    pub(crate) template_max_bytes: usize,
    /// The most variables in one URI template (`{a,b}{c}` has three).
    #[arg(skip)]
    pub(crate) template_max_variables: usize,
    /// The most bytes one URI template may compile to.
    #[arg(skip)]
    pub(crate) template_max_compiled_bytes: usize,
    /// The most bytes of compiled URI templates the hub holds at once (each distinct template
    /// once, however many subscribers share it); past it, new templates get 503.
    #[arg(skip)]
    pub(crate) template_budget_bytes: usize,
    /// The most distinct URI templates the hub holds at once (every event is matched against
    /// each, so this bounds what an event costs); past it, new templates get 503.
    #[arg(skip)]
    pub(crate) template_max_count: usize,
}

/// `[sse]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Sse {
    /// Seconds between keep-alive comments on idle streams (0 for none). (config: sse.heartbeat_secs)
    #[arg(long, env = "SSEHUB_HEARTBEAT_SECS")]
    pub(crate) heartbeat_secs: u64,
    // Announced at the start of each stream.
    /// Reconnection time announced to clients, in milliseconds. (config: sse.retry_ms)
    #[arg(long, env = "SSEHUB_RETRY_MS")]
    pub(crate) retry_ms: u64,
    // Added to `retry_ms`.
    /// Random extra reconnection time per stream, in milliseconds. (config: sse.retry_jitter_ms)
    #[arg(long, env = "SSEHUB_RETRY_JITTER_MS")]
    pub(crate) retry_jitter_ms: u64,
    /// Let the fan-out write an event straight to the socket of a subscriber whose
    /// connection is idle and writable, instead of queueing it and waking the connection
    /// (the idle-writable fast path; off by default: measured slower, see BENCHMARKS.md).
    /// (config: sse.direct_writes)
    #[arg(long, env = "SSEHUB_DIRECT_WRITES")]
    pub(crate) direct_writes: bool,
}

/// `[cors]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cors {
    // `*` allows any origin; empty (the default) none.
    /// An origin allowed by CORS (repeat, or comma-separate in the variable). (config: cors.origins)
    #[arg(
        long = "cors-origin",
        env = "SSEHUB_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "CORS_ORIGINS"
    )]
    pub(crate) origins: Vec<String>,
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Shutdown {
    // Streams and requests alike; closed by force after it.
    /// Seconds to let streams finish after SIGTERM before closing them. (config: shutdown.grace_secs)
    #[arg(
        long = "shutdown-grace-secs",
        env = "SSEHUB_SHUTDOWN_GRACE_SECS",
        value_name = "SHUTDOWN_GRACE_SECS"
    )]
    pub(crate) grace_secs: u64,
}

impl Default for History {
    /// One million events or 1 GiB, whichever comes first.
    fn default() -> Self {
        History {
            max_events: 1_000_000,
            max_bytes: 1 << 30,
            max_age_secs: None,
            topics: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let h = HttpConfig::default();
        let server = ssehub_server::Limits::default();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Limits {
            max_body_bytes: h.max_body_bytes,
            max_connections: h.max_connections,
            max_topics_per_subscription: h.max_topics_per_subscription,
            max_batch_events: h.max_batch_events,
            max_id_bytes: h.max_id_bytes,
            max_key_bytes: h.max_key_bytes,
            subscriber_buffer_bytes: HubConfig::default().subscriber_buffer_bytes,
            max_head_bytes: server.max_head_bytes,
            max_headers: server.max_headers,
            header_read_timeout_ms: millis(server.header_read_timeout),
            idle_timeout_ms: millis(server.idle_timeout),
            body_read_timeout_ms: millis(server.body_read_timeout),
            max_open_connections: server.max_open_connections,
            max_concurrent_streams: server.max_concurrent_streams,
            tls_handshake_timeout_ms: millis(server.tls_handshake_timeout),
            replay_page_bytes: HubConfig::default().replay_page_bytes,
            template_max_bytes: HubConfig::default().template_limits.max_bytes,
            template_max_variables: HubConfig::default().template_limits.max_variables,
            template_max_compiled_bytes: HubConfig::default().template_limits.max_compiled_bytes,
            template_budget_bytes: HubConfig::default().template_budget_bytes,
            template_max_count: HubConfig::default().template_max_count,
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
            direct_writes: false,
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
                !(1..=MAX_ID_BYTES_CAP).contains(&self.limits.max_id_bytes),
                "limits.max_id_bytes must be between 1 and 4096",
            ),
            (
                !(1..=MAX_ID_BYTES_CAP).contains(&self.limits.max_key_bytes),
                "limits.max_key_bytes must be between 1 and 4096",
            ),
            (
                self.limits.subscriber_buffer_bytes < 1024,
                "limits.subscriber_buffer_bytes must be at least 1024",
            ),
            (
                // A live subscriber must never be cut because of one event of the largest
                // size (the body limit bounds an event's encoding).
                self.limits.subscriber_buffer_bytes < self.limits.max_body_bytes,
                "limits.subscriber_buffer_bytes must be at least limits.max_body_bytes",
            ),
        ];
        for (bad, message) in checks {
            if bad {
                bail!("invalid configuration: {message}");
            }
        }
        self.server_limits()
            .validate()
            .map_err(|message| anyhow::anyhow!("invalid configuration: {message}"))?;
        if self.storage.fsync_interval_ms == 0 {
            bail!("invalid configuration: storage.fsync_interval_ms must be at least 1");
        }
        self.validate_relays()?;
        self.disk_options()?;
        self.cluster_options()?;
        // Keys are checked now; the listener rule is checked by `serve`, which knows it.
        self.auth("127.0.0.1:0".parse().expect("valid address"))?;
        for origin in &self.cors.origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!(
                    "invalid configuration: cors origin {origin:?} must be * or start with http:// or https://"
                );
            }
        }
        Ok(())
    }

    /// Retention for the in-memory store.
    pub(crate) fn memory_retention(&self) -> Retention {
        let cap = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Retention {
            max_events: cap(self.history.max_events),
            max_bytes: cap(self.history.max_bytes),
        }
    }

    /// Options of the durable store.
    pub(crate) fn disk_options(&self) -> anyhow::Result<ssehub_store::DiskOptions> {
        let limits = |events, bytes, age: Option<u64>| ssehub_store::RetentionLimits {
            max_events: events,
            max_bytes: bytes,
            max_age: age.map(Duration::from_secs),
        };
        let topics = self
            .topic_rules()
            .iter()
            .map(|rule| {
                Ok(ssehub_store::TopicRule {
                    pattern: rule.pattern()?,
                    limits: limits(rule.max_events, rule.max_bytes, rule.max_age_secs),
                    compaction: rule
                        .compaction()
                        .map(|tombstone_grace| ssehub_store::Compaction { tombstone_grace }),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(ssehub_store::DiskOptions {
            fsync: match self.storage.fsync {
                Fsync::Always => ssehub_store::FsyncPolicy::Always,
                Fsync::Interval => ssehub_store::FsyncPolicy::Interval(Duration::from_millis(
                    self.storage.fsync_interval_ms,
                )),
            },
            retention: ssehub_store::Retention {
                hub: limits(
                    Some(self.history.max_events),
                    Some(self.history.max_bytes),
                    self.history.max_age_secs,
                ),
                topics,
                ..ssehub_store::Retention::default()
            },
            tail_cache_events: self.storage.tail_cache_events,
            tail_cache_bytes: self.storage.tail_cache_bytes,
            quick_repair: self.storage.quick_repair,
        })
    }

    /// The authorization rules for a hub listening on `listen`.
    ///
    /// # Errors
    ///
    /// Bad keys, or a non-loopback listener without a publisher key (unless anonymous
    /// publishing was allowed explicitly): such a hub would let anyone on the network publish.
    pub(crate) fn auth(
        &self,
        listen: std::net::SocketAddr,
    ) -> anyhow::Result<ssehub_http::AuthConfig> {
        let a = &self.auth;
        let publisher = key_set(
            "publisher",
            a.publisher_key.as_ref(),
            a.publisher_key_file.as_ref(),
            &a.publisher_algorithm,
        )?;
        let subscriber = key_set(
            "subscriber",
            a.subscriber_key.as_ref(),
            a.subscriber_key_file.as_ref(),
            &a.subscriber_algorithm,
        )?;
        let anonymous_publish = publisher.is_none();
        // Allowed only because the listener is loopback: only for clients on this machine.
        let anonymous_publish_local_only =
            anonymous_publish && listen.ip().is_loopback() && !a.allow_anonymous_publish;
        if anonymous_publish && !listen.ip().is_loopback() && !a.allow_anonymous_publish {
            bail!(
                "refusing to listen on {listen} without a publisher key: anyone who can reach it could publish. \
                 Set [auth] publisher_key (or SSEHUB_PUBLISHER_KEY, or publisher_key_file), or pass \
                 --allow-anonymous-publish if that is what you want"
            );
        }
        Ok(ssehub_http::AuthConfig {
            publisher,
            subscriber,
            anonymous_publish,
            anonymous_subscribe: a.anonymous_subscribe,
            cookie_name: a.cookie_name.clone(),
            allowed_origins: self.cors.origins.clone(),
            anonymous_publish_local_only,
            trusted_proxy: match self.http.trusted_proxy {
                TrustedProxy::None => None,
                TrustedProxy::Forwarded => Some(ssehub_http::ProxyHeader::Forwarded),
                TrustedProxy::XForwardedFor => Some(ssehub_http::ProxyHeader::XForwardedFor),
            },
        })
    }

    pub(crate) fn hub(&self) -> HubConfig {
        HubConfig {
            subscriber_buffer_bytes: self.limits.subscriber_buffer_bytes,
            replay_page_bytes: self.limits.replay_page_bytes,
            template_limits: ssehub_core::TemplateLimits {
                max_bytes: self.limits.template_max_bytes,
                max_variables: self.limits.template_max_variables,
                max_compiled_bytes: self.limits.template_max_compiled_bytes,
            },
            template_budget_bytes: self.limits.template_budget_bytes,
            template_max_count: self.limits.template_max_count,
            heartbeat: (self.sse.heartbeat_secs > 0)
                .then(|| Duration::from_secs(self.sse.heartbeat_secs)),
            direct_writes: self.sse.direct_writes,
            ..HubConfig::default()
        }
    }

    /// The `Host` names a hub listening on `listen` answers to.
    pub(crate) fn allowed_hosts(&self, listen: std::net::SocketAddr) -> ssehub_http::AllowedHosts {
        if !self.http.allowed_hosts.is_empty() {
            ssehub_http::AllowedHosts::List(self.http.allowed_hosts.clone())
        } else if listen.ip().is_loopback() {
            ssehub_http::AllowedHosts::Loopback
        } else {
            ssehub_http::AllowedHosts::Any
        }
    }

    /// The connection layer's limits.
    pub(crate) fn server_limits(&self) -> ssehub_server::Limits {
        let l = &self.limits;
        ssehub_server::Limits {
            max_head_bytes: l.max_head_bytes,
            max_headers: l.max_headers,
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(l.idle_timeout_ms),
            body_read_timeout: Duration::from_millis(l.body_read_timeout_ms),
            max_open_connections: l.max_open_connections,
            max_concurrent_streams: l.max_concurrent_streams,
            tls_handshake_timeout: Duration::from_millis(l.tls_handshake_timeout_ms),
        }
    }

    pub(crate) fn http(&self) -> HttpConfig {
        HttpConfig {
            max_body_bytes: self.limits.max_body_bytes,
            max_connections: self.limits.max_connections,
            max_topics_per_subscription: self.limits.max_topics_per_subscription,
            max_batch_events: self.limits.max_batch_events,
            max_id_bytes: self.limits.max_id_bytes,
            max_key_bytes: self.limits.max_key_bytes,
            retry_ms: self.sse.retry_ms,
            retry_jitter_ms: self.sse.retry_jitter_ms,
            cors_origins: self.cors.origins.clone(),
            mercure_subscriptions: self.mercure.subscriptions,
            // Set by `serve` from the listen address (`allowed_hosts`).
            allowed_hosts: ssehub_http::AllowedHosts::Any,
            console: self.console(),
            relays: self.relay.iter().map(relay::Relay::http).collect(),
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

    /// Every key `--print-default-config` prints is a setting of its own: a value other than
    /// its default loads from the file, lands in one field, and prints back under the same
    /// key, with every other key unchanged.
    #[test]
    fn every_default_setting_round_trips() {
        let defaults: toml::Table = toml::from_str(&Config::default().to_toml()).unwrap();
        let mut checked = 0;
        for (section, keys) in &defaults {
            for (key, default) in keys.as_table().unwrap() {
                let (file, config) = other_values(default)
                    .into_iter()
                    .find_map(|value| {
                        let mut file = defaults.clone();
                        file[section]
                            .as_table_mut()
                            .unwrap()
                            .insert(key.clone(), value);
                        let config: Config = file.clone().try_into().ok()?;
                        (config != Config::default()).then_some((file, config))
                    })
                    .unwrap_or_else(|| {
                        panic!("no value other than the default loads {section}.{key}")
                    });
                let printed: toml::Table = toml::from_str(&config.to_toml()).unwrap();
                assert_eq!(printed, file, "{section}.{key} does not round-trip");
                checked += 1;
            }
        }
        let printed_keys = Config::default().to_toml().matches(" = ").count();
        assert_eq!(checked, printed_keys, "every printed key was checked");
    }

    /// Values of the same TOML type as `default`, to try in turn for one that differs from it.
    fn other_values(default: &toml::Value) -> Vec<toml::Value> {
        use clap::ValueEnum;
        use toml::Value;
        // A setting that is an enum takes one of the names of its own.
        let names = Fsync::value_variants()
            .iter()
            .filter_map(ValueEnum::to_possible_value)
            .chain(
                TrustedProxy::value_variants()
                    .iter()
                    .filter_map(ValueEnum::to_possible_value),
            )
            .map(|name| Value::String(name.get_name().to_owned()));
        match default {
            Value::Integer(n) => vec![Value::Integer(n + 1)],
            Value::Boolean(b) => vec![Value::Boolean(!b)],
            Value::String(s) => std::iter::once(Value::String(format!("{s}-changed")))
                .chain(names)
                .collect(),
            Value::Array(a) if a.is_empty() => vec![
                Value::Array(vec![Value::String("https://a.example".into())]),
                Value::Array(vec![Value::Table(toml::toml! { pattern = "a/*" })]),
            ],
            other => panic!("a default of a type this test does not know: {other:?}"),
        }
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

    #[test]
    fn connection_limits_reach_the_server() {
        let c: Config =
            toml::from_str("[limits]\nheader_read_timeout_ms = 250\nmax_open_connections = 7\n")
                .unwrap();
        c.validate().unwrap();
        let limits = c.server_limits();
        assert_eq!(limits.header_read_timeout, Duration::from_millis(250));
        assert_eq!(limits.max_open_connections, 7);
        assert_eq!(
            Config::default().server_limits(),
            ssehub_server::Limits::default()
        );
        let c: Config = toml::from_str("[limits]\nmax_head_bytes = 4096\n").unwrap();
        let error = c.validate().unwrap_err().to_string();
        assert!(error.contains("max_head_bytes"), "{error}");
    }

    /// One event of the largest size must fit a subscriber's buffer, or it would cut every
    /// live subscriber.
    #[test]
    fn the_subscriber_buffer_holds_the_largest_event() {
        let c: Config = toml::from_str("[limits]\nmax_body_bytes = 2097152\n").unwrap();
        let error = c.validate().unwrap_err().to_string();
        assert!(error.contains("subscriber_buffer_bytes"), "{error}");
        let c: Config = toml::from_str(
            "[limits]\nmax_body_bytes = 2097152\nsubscriber_buffer_bytes = 2097152\n",
        )
        .unwrap();
        c.validate().unwrap();
    }
}
