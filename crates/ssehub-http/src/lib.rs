//! The ssehub HTTP API, as an axum [`Router`].
//!
//! | route | what |
//! | --- | --- |
//! | `GET /topics/{topic}` | subscribe to one topic or pattern (SSE) |
//! | `GET /subscribe?topic=A&topic=B` | subscribe to several, one ordered stream |
//! | `POST /topics/{topic}` | publish the body as one event (`?event=TYPE`, `?id=ID`) → `{"id"}` |
//! | `POST /publish` | publish a JSON array of `{topic, data, event?, private?, id?}` → `{"ids"}` |
//! | `GET /healthz` | liveness |
//! | `GET /metrics` | Prometheus text |
//! | `/.well-known/mercure` | the Mercure protocol (publish, subscribe, active subscriptions) |
//! | `GET /`, `/demos/` | the console and the demos (pages embedded in the binary) |
//! | `GET /console/stats` | the hub's own figures, one snapshot a second (SSE) |
//! | `/<relay prefix>/…` | a relay: forwarded upstream, an SSE answer stored in `relay/<capability>` |
//!
//! Process concerns (listening, signals, config files) belong to the binary: it builds an
//! [`AppState`] and serves [`router`].
//!
//! # Layout
//!
//! - `subscribe.rs` — SSE responses (with the subscription's [`DirectHandle`] in their
//!   extensions), resume parameters, the connection limit.
//! - `publish.rs` — publish endpoints and input validation.
//! - `mercure.rs` — the Mercure protocol at `/.well-known/mercure`, and the discovery `Link`.
//! - `auth.rs` — [`AuthConfig`]: JWT rights (Mercure claims), token sources, CSRF.
//! - `trust.rs` — where a request comes from: allowed `Host`s, a publish's `Origin`, proxies.
//! - `error.rs` — [`ApiError`] and [`Reason`]: JSON errors and their metric labels.
//! - `metrics.rs` — [`Metrics`]: the Prometheus registry and `/metrics`.
//! - `query.rs` — query strings with repeated parameters.
//! - `console.rs` — the console and demo pages, and the stats stream (`console/stats.rs`).
//! - `relay.rs` — relays: resumable POST streams in front of an upstream SSE endpoint.

mod auth;
mod console;
mod error;
mod mercure;
mod metrics;
mod publish;
mod query;
mod relay;
mod subscribe;
mod trust;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ssehub_core::Hub;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::{AuthConfig, Grant, KeySet, PublishRights, Role};
pub use console::{CONTENT_SECURITY_POLICY, ConsoleConfig};
pub use error::{ApiError, BodyTimeout, Reason};
pub use mercure::{MAX_OTHER_STREAMS, SubscriptionDirectory};
pub use metrics::{AcceptError, AcceptErrors, ConnMetrics, ConnTimeout, Metrics};
pub use relay::{END_EVENT, EndReason, RelayConfig, TOPIC_HEADER, TOPIC_PREFIX};
/// For the connection layer: an SSE response carries a [`DirectHandle`] in its extensions,
/// through which a connection that writes the body itself installs its socket as the
/// subscription's [`DirectSink`] (the fan-out's fast path).
pub use ssehub_core::{DirectHandle, DirectSink, Sent};
pub use trust::{AllowedHosts, ProxyHeader};

/// HTTP-level settings: the `[limits]`, `[sse]` and `[cors]` sections of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// The most SSE streams open at once (503 with `Retry-After` above it).
    pub max_connections: usize,
    /// The most topics or patterns in one subscription.
    pub max_topics_per_subscription: usize,
    /// The most events in one `POST /publish` batch.
    pub max_batch_events: usize,
    /// The longest publisher event id (`id` of a publish), in bytes (400 above it): the
    /// store's index holds one per retained event that has one, and every copy of the event
    /// carries it.
    pub max_id_bytes: usize,
    /// The longest key of a publish (`?key=`), in bytes (400 `invalid_key` above it): the
    /// store's key index holds one per retained (topic, key).
    pub max_key_bytes: usize,
    /// The reconnection time sent at the start of every stream, in milliseconds.
    pub retry_ms: u64,
    /// Up to this many milliseconds are added at random to `retry_ms`, per stream, so that
    /// clients do not all reconnect at once after a restart.
    pub retry_jitter_ms: u64,
    /// Origins allowed by CORS (`*` for any). Empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Mercure's active subscriptions: private updates when a Mercure subscription starts and
    /// ends, and the `/.well-known/mercure/subscriptions` API (the `[mercure]` section).
    pub mercure_subscriptions: bool,
    /// The `Host` names the hub answers to (421 `host_not_allowed` otherwise): against DNS
    /// rebinding. The binary's default follows the listen address.
    pub allowed_hosts: AllowedHosts,
    /// The console, the demos and the stats stream (the `[console]` section).
    pub console: ConsoleConfig,
    /// The relays (`[[relay]]`, `--relay`): see `relay.rs`.
    pub relays: Vec<RelayConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1 << 20,
            max_connections: 100_000,
            max_topics_per_subscription: 32,
            max_batch_events: 1000,
            max_id_bytes: ssehub_core::DEFAULT_MAX_ID_BYTES,
            max_key_bytes: ssehub_core::DEFAULT_MAX_KEY_BYTES,
            retry_ms: 2000,
            retry_jitter_ms: 1000,
            cors_origins: Vec::new(),
            mercure_subscriptions: true,
            allowed_hosts: AllowedHosts::Any,
            console: ConsoleConfig::default(),
            relays: Vec::new(),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The hub.
    pub hub: Hub,
    /// The settings.
    pub config: Arc<HttpConfig>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Who may publish and subscribe.
    pub auth: Arc<AuthConfig>,
    /// In a cluster, where the hubs keep their active Mercure subscriptions, so that each
    /// lists them all; `None` for a hub alone.
    pub subscription_directory: Option<Arc<dyn SubscriptionDirectory>>,
    /// The console's stats task and its watchers.
    pub(crate) console_stats: Arc<console::StatsFeed>,
}

impl AppState {
    /// State for `hub` with `config`.
    pub fn new(hub: Hub, config: HttpConfig) -> Self {
        let metrics = Metrics::new(hub.clone());
        AppState {
            console_stats: Arc::new(console::StatsFeed::new(metrics.console_watchers())),
            metrics: Arc::new(metrics),
            hub,
            config: Arc::new(config),
            auth: Arc::new(AuthConfig::default()),
            subscription_directory: None,
        }
    }

    /// The same state, as a hub of a cluster whose hubs keep their active Mercure
    /// subscriptions in `directory`.
    pub fn with_subscription_directory(
        mut self,
        directory: Arc<dyn SubscriptionDirectory>,
    ) -> Self {
        self.subscription_directory = Some(directory);
        self
    }

    /// The same state with `auth` as the authorization rules.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Turns a handler's result into a response, counting refusals by reason.
    pub(crate) fn respond(&self, result: Result<Response, ApiError>) -> Response {
        result.unwrap_or_else(|error| {
            // A body timeout is answered and counted by the connection layer (`BodyTimeout`).
            if error.reason != Reason::RequestTimeout {
                self.metrics.reject(error.reason);
            }
            tracing::debug!(reason = error.reason.as_str(), message = %error.message, "refused a request");
            error.into_response()
        })
    }
}

/// The router for `state`.
///
/// # Errors
///
/// A message naming the CORS origin that is not a valid header value.
pub fn router(state: AppState) -> Result<Router, String> {
    let cors = cors(&state.config.cors_origins)?;
    let max_body = state.config.max_body_bytes;
    let mut router = Router::new()
        .route("/topics/{*topic}", get(subscribe::topic).post(publish::one))
        .route("/subscribe", get(subscribe::many))
        .route("/publish", axum::routing::post(publish::batch))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(mercure::router(state.clone()))
        .merge(console::router(&state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body));
    if let Some(relays) = relay::Relays::new(&state)? {
        router = router.layer(axum::middleware::from_fn_with_state(
            relays,
            relay::intercept,
        ));
    }
    let mut router = router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trust::check_host,
        ))
        .with_state(state);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    // Discovery: every response names the Mercure hub.
    router = router.layer(axum::middleware::map_response(mercure::discovery_link));
    Ok(router)
}

fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| format!("bad CORS origin {o:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::CACHE_CONTROL,
                HeaderName::from_static("last-event-id"),
            ])
            // Cookies (the Mercure cookie) cross origins only with credentials allowed, which
            // the CORS rules forbid together with `*`.
            .allow_credentials(!origins.iter().any(|o| o == "*"))
            // Mercure clients read it to detect lost history.
            .expose_headers([
                HeaderName::from_static("last-event-id"),
                // A page reads it to resume a relayed answer.
                HeaderName::from_static(relay::TOPIC_HEADER),
            ]),
    ))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn not_found(axum::extract::State(app): axum::extract::State<AppState>) -> Response {
    app.respond(Err(ApiError::new(
        Reason::NotFound,
        "no such route; see GET /topics/{topic}, GET /subscribe, POST /topics/{topic}, POST /publish",
    )))
}
