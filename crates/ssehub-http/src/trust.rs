//! Where a request comes from, and how much of that to believe: the `Host` it was sent to,
//! the `Origin` of the page that sent it, and the proxy it came through.
//!
//! A hub that lets anonymous clients publish (the development default on loopback) trusts
//! its listen address to stand for "local users". Three things break that trust, and each has
//! a check here:
//!
//! - **Cross-site pages.** A page on any site can make the user's browser POST to
//!   `http://127.0.0.1:8080` (`text/plain` or a form needs no CORS preflight). A publish that
//!   carries an `Origin` other than the hub's own, and not listed in `cors.origins`, or
//!   `Sec-Fetch-Site: cross-site`, is refused with 403 `origin_not_allowed`
//!   ([`check_publish_origin`]). `*` in `cors.origins` counts only for a request that
//!   carries a token in the `Authorization` header or the query (which a page can only have
//!   been given on purpose) — never for anonymous or cookie-authenticated publishes.
//! - **DNS rebinding.** A page on `evil.example` whose name is then pointed at 127.0.0.1 is
//!   same-origin with itself, so the Origin check cannot see it; its `Host` is still
//!   `evil.example`. Every request's `Host` must name the hub ([`AllowedHosts`], checked by
//!   [`check_host`] for every route): 421 `host_not_allowed` otherwise.
//! - **A local reverse proxy.** Behind nginx on the same machine every request arrives from
//!   loopback, the whole internet included. A request that carries `Forwarded`,
//!   `X-Forwarded-For` or `Via` is therefore not local for anonymous publishing (401, as any
//!   remote anonymous publish), and the first one seen logs a warning. With a trusted proxy
//!   configured ([`ProxyHeader`]), the client's address is the last entry of the header that
//!   proxy sets, and it is local only when that address is loopback.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::error::{ApiError, Reason};

/// The `Host` values the hub answers to (`[http] allowed_hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedHosts {
    /// Any (`*`, and the default on a non-loopback listener, whose names the hub cannot know).
    #[default]
    Any,
    /// Loopback names only: `localhost` and loopback IP literals (`127.0.0.1`, `[::1]`), any
    /// port. The default on a loopback listener.
    Loopback,
    /// These names: `name` (any port) or `name:port`, compared without case.
    List(Vec<String>),
}

impl AllowedHosts {
    /// Whether a request sent to `host` (a `Host` header value) is for this hub.
    pub fn allows(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Loopback => is_loopback_name(name),
            AllowedHosts::List(list) => list.iter().any(|entry| {
                if entry == "*" {
                    return true;
                }
                let (entry_name, entry_port) = split_host(entry);
                entry_name.eq_ignore_ascii_case(name)
                    && (entry_port.is_none() || entry_port == port)
            }),
        }
    }
}

/// The header a trusted reverse proxy sets to the client's address (`[http] trusted_proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `Forwarded: for=…` (RFC 7239); the last element's `for` is the client.
    Forwarded,
    /// `X-Forwarded-For: a, b, client`; the last address is the client.
    XForwardedFor,
}

/// `host[:port]` → (`host`, `port`); `[v6]:port` → (`v6`, `port`).
fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, after)) => (name, after.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware for every route: refuses a request whose `Host` is not one of the hub's names
/// (DNS rebinding). A request without `Host` (HTTP/1.0, or HTTP/2 without `:authority`)
/// cannot come from a browser and passes.
pub(crate) async fn check_host(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host
        && !app.config.allowed_hosts.allows(host)
    {
        return app.respond(Err(ApiError::new(
            Reason::HostNotAllowed,
            "this hub does not answer to that Host name (DNS rebinding?); see [http] allowed_hosts / --allowed-host",
        )));
    }
    next.run(request).await
}

/// The proxy headers that say a request was forwarded.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "via"];

/// Set once the first proxied request has been warned about.
static PROXY_WARNED: AtomicBool = AtomicBool::new(false);

/// Whether a request to a loopback listener comes from this machine, for anonymous
/// publishing. Without a trusted proxy, any proxy header means "from elsewhere"; with one,
/// the address that proxy recorded decides (no header at all: a direct local client).
pub(crate) fn is_local(headers: &HeaderMap, proxy: Option<ProxyHeader>) -> bool {
    match proxy {
        None => {
            let Some(name) = PROXY_HEADERS.iter().find(|h| headers.contains_key(**h)) else {
                return true;
            };
            if !PROXY_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    header = name,
                    "a request came through a proxy: anonymous publishing is refused for proxied requests, \
                     since the proxy makes every client look local. Set a publisher key, or --trusted-proxy \
                     (forwarded | x-forwarded-for) so the client's address is read from the proxy's header"
                );
            }
            false
        }
        Some(kind) => match client_address(headers, kind) {
            Ok(Some(ip)) => ip.is_loopback(),
            // The proxy's header is absent: a direct client of the loopback listener.
            Ok(None) => true,
            // Present but unreadable (`unknown`, an obfuscated name): not known to be local.
            Err(()) => false,
        },
    }
}

/// The client address a trusted proxy recorded: the last entry of its header (earlier ones
/// were sent by the client and prove nothing).
fn client_address(headers: &HeaderMap, kind: ProxyHeader) -> Result<Option<IpAddr>, ()> {
    let name = match kind {
        ProxyHeader::Forwarded => "forwarded",
        ProxyHeader::XForwardedFor => "x-forwarded-for",
    };
    let Some(last) = headers.get_all(name).iter().next_back() else {
        return Ok(None);
    };
    let last = last.to_str().map_err(|_| ())?;
    let entry = last.rsplit(',').next().unwrap_or("").trim();
    let address = match kind {
        ProxyHeader::XForwardedFor => entry,
        ProxyHeader::Forwarded => entry
            .split(';')
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then_some(value.trim())
            })
            .ok_or(())?
            .trim_matches('"'),
    };
    let (name, _port) = split_host(address);
    name.parse::<IpAddr>().map(Some).map_err(|_| ())
}

/// Refuses a browser's publish from another site: an `Origin` that is neither the hub's own
/// (the `Host` it was sent to) nor listed in `allowed` (`*` only when `token_in_request`: a
/// token in the `Authorization` header or the query), or `Sec-Fetch-Site: cross-site` without
/// a listed `Origin`. A request with neither header is not a browser's cross-site request.
pub(crate) fn check_publish_origin(
    headers: &HeaderMap,
    allowed: &[String],
    token_in_request: bool,
) -> Result<(), ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::new(
            Reason::OriginNotAllowed,
            format!(
                "a publish from {what} is refused: its origin must be the hub's own or listed in cors.origins (--cors-origin)"
            ),
        ))
    };
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let Some(origin) = headers.get(header::ORIGIN) else {
        return if cross_site {
            refuse("another site")
        } else {
            Ok(())
        };
    };
    let Ok(origin) = origin.to_str() else {
        return refuse("an unreadable Origin");
    };
    let origin = origin.trim_end_matches('/');
    let listed = allowed
        .iter()
        .any(|o| o.trim_end_matches('/') == origin || (o == "*" && token_in_request));
    if listed {
        return Ok(());
    }
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .zip(
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://")),
        )
        .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority));
    if own && !cross_site {
        Ok(())
    } else {
        refuse(&format!("the page origin {origin:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hosts() {
        let lo = AllowedHosts::Loopback;
        for ok in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "LOCALHOST",
            "127.0.0.2",
        ] {
            assert!(lo.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[::2]:1",
            "",
        ] {
            assert!(!lo.allows(bad), "{bad}");
        }
        let list = AllowedHosts::List(vec!["hub.example".into(), "other.example:8443".into()]);
        assert!(list.allows("HUB.example:443") && list.allows("other.example:8443"));
        assert!(!list.allows("other.example:8444") && !list.allows("evil.example"));
        assert!(AllowedHosts::List(vec!["*".into()]).allows("anything"));
    }

    #[test]
    fn locality() {
        assert!(is_local(&headers(&[]), None));
        for h in PROXY_HEADERS {
            assert!(!is_local(&headers(&[(h, "x")]), None), "{h}");
        }
        let xff = Some(ProxyHeader::XForwardedFor);
        assert!(is_local(&headers(&[]), xff));
        assert!(is_local(
            &headers(&[("x-forwarded-for", "203.0.113.9, 127.0.0.1")]),
            xff
        ));
        assert!(!is_local(
            &headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.9")]),
            xff
        ));
        assert!(!is_local(&headers(&[("x-forwarded-for", "junk")]), xff));
        let fwd = Some(ProxyHeader::Forwarded);
        assert!(is_local(
            &headers(&[("forwarded", "for=\"[::1]:5\";proto=http")]),
            fwd
        ));
        assert!(!is_local(
            &headers(&[("forwarded", "for=127.0.0.1, for=198.51.100.1")]),
            fwd
        ));
        assert!(!is_local(&headers(&[("forwarded", "for=unknown")]), fwd));
    }

    #[test]
    fn origins() {
        let allowed = vec!["http://app.example".to_string()];
        let check = |pairs: &[(&'static str, &'static str)], token| {
            check_publish_origin(&headers(pairs), &allowed, token).is_ok()
        };
        assert!(check(&[], false));
        assert!(check(&[("origin", "http://app.example")], false));
        assert!(check(
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ],
            false
        ));
        assert!(!check(
            &[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8080")
            ],
            false
        ));
        assert!(!check(&[("origin", "null")], false));
        assert!(!check(&[("sec-fetch-site", "cross-site")], false));
        assert!(check(
            &[
                ("origin", "http://app.example"),
                ("sec-fetch-site", "cross-site")
            ],
            false
        ));
        let star = vec!["*".to_string()];
        let h = headers(&[("origin", "http://evil.example")]);
        assert!(check_publish_origin(&h, &star, true).is_ok());
        assert!(check_publish_origin(&h, &star, false).is_err());
    }
}
