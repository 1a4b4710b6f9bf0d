//! The console at `/` and the demos at `/demos/`: pages served from the binary, and the hub's
//! own stats stream at `/console/stats`.
//!
//! The pages are plain HTML, CSS and JavaScript modules in the crate's `console/` folder,
//! embedded with `include_bytes!`: there is no build step, nothing to install next to the
//! binary, and what a browser gets is exactly what is in the repository (view source is the
//! documentation). Every page and asset carries a strict Content-Security-Policy (`'self'`
//! only: no inline script, no other origin), so a page of the hub cannot be made to run or
//! load anything else, and `nosniff`. Assets are revalidated on every load (`no-cache` with
//! an `ETag`): a hub upgrade is never hidden behind a stale cache, and an unchanged asset
//! costs a 304.
//!
//! `[console] enabled = false` (`--console false`) removes every route of this module: `/`
//! is then the JSON 404 of any unknown route.
//!
//! The stats stream (`stats.rs`) is one task for the whole hub, started by the first watcher
//! and stopped after the last; see there for what it sends and what it costs.

mod stats;

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub(crate) use stats::{StatsFeed, stats};

use crate::AppState;

/// The console's settings: the `[console]` section of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Serve the console, the demos and the stats stream (otherwise those routes are 404).
    pub enabled: bool,
    /// The most topics one stats snapshot lists (the most active first): bounds the snapshot's
    /// size whatever the number of topics.
    pub max_topics: usize,
    /// The most stats streams open at once (503 `over_connection_limit` above it). A stats
    /// stream is not a subscription: this limit alone bounds them (and each is a TCP
    /// connection under `limits.max_open_connections`).
    pub max_watchers: usize,
    /// The most events the stats task reads from history per second to count events per
    /// topic: past it, per-topic figures come from the newest events only (the snapshot says
    /// `"sampled": true`) while the hub-wide rates stay exact.
    pub scan_events: usize,
    /// The hub's retention settings, shown by the console as they are (the binary fills it
    /// from `[history]`).
    pub retention: serde_json::Value,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            max_topics: 20,
            max_watchers: 64,
            scan_events: 10_000,
            retention: serde_json::Value::Null,
        }
    }
}

/// The policy of every page and asset: scripts, styles, images and connections from the hub
/// itself only; no inline code, no frames, no plugins, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// One embedded file and the path it is served at.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every page and asset, at its path.
static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/console/console.js", "console.js", JS),
    asset!("/console/stream.js", "stream.js", JS),
    asset!("/console/charts.js", "charts.js", JS),
    asset!("/console/token.js", "token.js", JS),
    asset!("/console/base.css", "base.css", CSS),
    asset!("/console/console.css", "console.css", CSS),
    asset!("/console/favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!("/demos/", "demos/index.html", HTML),
    asset!("/demos/clock.html", "demos/clock.html", HTML),
    asset!("/demos/clock.js", "demos/clock.js", JS),
    asset!("/demos/build.html", "demos/build.html", HTML),
    asset!("/demos/build.js", "demos/build.js", JS),
    asset!("/demos/inbox.html", "demos/inbox.html", HTML),
    asset!("/demos/inbox.js", "demos/inbox.js", JS),
    asset!("/demos/cursors.html", "demos/cursors.html", HTML),
    asset!("/demos/cursors.js", "demos/cursors.js", JS),
    asset!("/demos/llm.html", "demos/llm.html", HTML),
    asset!("/demos/llm.js", "demos/llm.js", JS),
    asset!("/demos/resumable-fetch.js", "demos/resumable-fetch.js", JS),
    asset!("/demos/demos.css", "demos/demos.css", CSS),
];

/// Each asset's `ETag`, in the order of [`ASSETS`]: a hash of its bytes, made once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            asset.body.hash(&mut hasher);
            HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
                .expect("hex digits and quotes are a valid header value")
        })
        .collect()
});

/// The console's routes, or none when it is turned off.
pub(crate) fn router<S>(app: &AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    if !app.config.console.enabled {
        return router;
    }
    for (index, asset) in ASSETS.iter().enumerate() {
        router = router.route(asset.path, get(move |headers| serve(index, headers)));
    }
    router
        .route("/demos", get(|| async { Redirect::permanent("/demos/") }))
        .route("/console/stats", get(stats).with_state(app.clone()))
}

/// Serves asset `index`: 304 when the client has it already.
async fn serve(index: usize, headers: HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|given| given.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
