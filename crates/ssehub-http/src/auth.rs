//! Who may publish and subscribe: JWTs carrying Mercure's rights claims.
//!
//! A token is a compact JWS (HS256, RS256, ES256 or EdDSA; `none` is never accepted) whose
//! `mercure` claim (or the namespaced `https://mercure.rocks/`) holds `publish` and `subscribe`
//! arrays of topic selectors and an optional `payload`. It is looked for, in this order, in
//! the `Authorization: Bearer` header, the `authorization` query parameter (EventSource cannot
//! send headers), and a cookie (`mercureAuthorization` by default). Publishers and subscribers
//! have separate keys.
//!
//! - Publishing needs a token whose `publish` selectors match **every** topic of the event,
//!   unless anonymous publishing is on (the binary allows it only on loopback by default).
//! - Subscribing is open to anonymous clients for public events (unless turned off); private
//!   events go only to subscribers whose `subscribe` selectors match one of their topics.
//! - A subscription ends when its token's `exp` passes.
//! - A POST authenticated by cookie must come from an allowed `Origin` (CSRF).
//! - Before any token is looked at, a publish must not come from another site's page, and an
//!   anonymous publish allowed only for local clients must not come through a proxy (see
//!   `trust.rs`). All of this is decided from the request head, before its body is read.
//!
//! Tokens are never logged; errors say what is wrong without echoing them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use ssehub_core::{Pattern, Selector, Topic};

use crate::error::{ApiError, Reason};
use crate::query::Query;

/// The verification keys of one role.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let algs: Vec<Algorithm> = self.keys.iter().map(|k| k.1).collect();
        f.debug_struct("KeySet").field("algorithms", &algs).finish()
    }
}

impl KeySet {
    /// An HS256 shared secret.
    pub fn hmac(secret: &[u8]) -> KeySet {
        KeySet {
            keys: vec![(None, Algorithm::HS256, DecodingKey::from_secret(secret))],
        }
    }

    /// A public key in PEM for `algorithm` (RS256, ES256 or EdDSA).
    ///
    /// # Errors
    ///
    /// When the algorithm is not one of those, or the PEM does not hold such a key.
    pub fn pem(algorithm: Algorithm, pem: &[u8]) -> Result<KeySet, String> {
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            other => {
                return Err(format!(
                    "{other:?} keys are not supported; use HS256, RS256, ES256 or EdDSA"
                ));
            }
        }
        .map_err(|e| format!("invalid {algorithm:?} public key: {e}"))?;
        Ok(KeySet {
            keys: vec![(None, algorithm, key)],
        })
    }

    /// The keys of a JWKS document (each with its `alg` and `kid`).
    ///
    /// # Errors
    ///
    /// When the JSON is not a JWKS or a key has no supported algorithm.
    pub fn jwks(json: &str) -> Result<KeySet, String> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(json).map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let algorithm = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                .ok_or("every JWKS key needs a supported \"alg\"")?;
            if !matches!(
                algorithm,
                Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
            ) {
                return Err(format!("JWKS algorithm {algorithm:?} is not supported"));
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("invalid JWKS key: {e}"))?;
            keys.push((jwk.common.key_id.clone(), algorithm, key));
        }
        if keys.is_empty() {
            return Err("the JWKS holds no key".into());
        }
        Ok(KeySet { keys })
    }

    /// Verifies `token`'s signature, algorithm and time claims.
    fn verify(&self, token: &str) -> Result<Claims, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "malformed token".to_string())?;
        let mut last = String::from("no key for the token's algorithm");
        for (kid, algorithm, key) in &self.keys {
            if *algorithm != header.alg
                || (kid.is_some() && header.kid.is_some() && *kid != header.kid)
            {
                continue;
            }
            let mut validation = Validation::new(*algorithm);
            // Mercure tokens often have no `exp`; when they do, it is enforced.
            validation.required_spec_claims.clear();
            validation.validate_aud = false;
            validation.leeway = 0;
            // A token is not valid before its `nbf` (RFC 7519 §4.1.5): one minted for later
            // must not work now.
            validation.validate_nbf = true;
            // `exp` is the first second the token is no longer valid (RFC 7519), and the
            // library compares whole seconds with `exp < now`: this makes it `exp <= now`.
            validation.reject_tokens_expiring_in_less_than = 1;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = match e.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired token".into(),
                        jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature".into(),
                        _ => "invalid token".into(),
                    };
                }
            }
        }
        Err(last)
    }
}

#[derive(Debug, Deserialize, Default)]
struct Claims {
    #[serde(default)]
    mercure: Option<Rights>,
    #[serde(default, rename = "https://mercure.rocks/")]
    namespaced: Option<Rights>,
    #[serde(default)]
    exp: Option<u64>,
}

#[derive(Debug, Deserialize, Default, Clone)]
struct Rights {
    #[serde(default)]
    publish: Option<Vec<String>>,
    #[serde(default)]
    subscribe: Option<Vec<String>>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

/// Authorization settings, built by the binary from its config.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Keys that sign publisher tokens; `None`: no publisher tokens.
    pub publisher: Option<KeySet>,
    /// Keys that sign subscriber tokens; `None`: no subscriber tokens.
    pub subscriber: Option<KeySet>,
    /// Publishing without a token is allowed (development on loopback).
    pub anonymous_publish: bool,
    /// Subscribing to public events without a token is allowed.
    pub anonymous_subscribe: bool,
    /// The cookie holding a token.
    pub cookie_name: String,
    /// Origins a cookie-authenticated POST may come from (CSRF); the CORS origins too.
    pub allowed_origins: Vec<String>,
    /// Anonymous publishing is for local clients only (a loopback listener without
    /// `--allow-anonymous-publish`): a request that came through a proxy is not local.
    pub anonymous_publish_local_only: bool,
    /// The reverse proxy whose header names the client (`--trusted-proxy`); `None`: any
    /// proxy header makes a request non-local.
    pub trusted_proxy: Option<crate::trust::ProxyHeader>,
}

impl Default for AuthConfig {
    /// No keys, anonymous publishing and subscribing: a development hub.
    fn default() -> Self {
        AuthConfig {
            publisher: None,
            subscriber: None,
            anonymous_publish: true,
            anonymous_subscribe: true,
            cookie_name: "mercureAuthorization".into(),
            allowed_origins: Vec::new(),
            anonymous_publish_local_only: false,
            trusted_proxy: None,
        }
    }
}

/// The topics a request may publish to.
#[derive(Debug, Clone, Default)]
pub enum PublishRights {
    /// None: a subscriber, or a publisher token without `mercure.publish`.
    #[default]
    Nothing,
    /// The topics matching these selectors (a publisher token).
    Topics(Selector),
    /// Any topic (anonymous publishing on a hub that allows it).
    Any,
}

/// What a request is allowed to do.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The topics it may publish to.
    pub publish: PublishRights,
    /// Selectors of the private topics it may receive; `None` for none.
    pub subscribe: Option<Selector>,
    /// The token's `payload` claim.
    pub payload: Option<serde_json::Value>,
    /// When the token expires.
    pub expires_at: Option<SystemTime>,
    /// The token came from a cookie (so POSTs need an allowed Origin).
    pub from_cookie: bool,
}

impl Grant {
    /// How long until the token expires (zero if it already has).
    pub fn time_left(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
    }

    /// Whether every one of `topics` may be published to.
    pub fn may_publish(&self, topics: &[Topic]) -> bool {
        match &self.publish {
            PublishRights::Any => true,
            PublishRights::Topics(rights) => topics
                .iter()
                .all(|t| rights.patterns().iter().any(|p| p.matches(t))),
            PublishRights::Nothing => false,
        }
    }
}

/// The two roles tokens are checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishing.
    Publish,
    /// Subscribing.
    Subscribe,
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(Reason::Unauthorized, message)
}

/// Finds the token of a request: `Authorization: Bearer`, then `authorization=`, then the
/// cookie. Returns it and whether it came from the cookie.
fn find_token<'a>(
    headers: &'a HeaderMap,
    query: &'a Query,
    cookie_name: &str,
) -> Result<Option<(String, bool)>, ApiError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return Ok(Some((token.trim().to_string(), false)));
    }
    if let Some(token) = query.get("authorization") {
        return Ok(Some((token.to_string(), false)));
    }
    for cookies in headers.get_all(axum::http::header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for pair in cookies.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == cookie_name
            {
                return Ok(Some((value.to_string(), true)));
            }
        }
    }
    Ok(None)
}

fn selector(selectors: Option<&Vec<String>>) -> Option<Selector> {
    let patterns: Vec<Pattern> = selectors?
        .iter()
        .take(1000)
        .filter_map(|s| Pattern::mercure(s).ok())
        .collect();
    Selector::new(patterns).ok()
}

impl AuthConfig {
    /// Checks a request for `role`.
    ///
    /// # Errors
    ///
    /// 401 when a token is needed and missing, or is malformed, badly signed, of another
    /// algorithm, or expired; 403 when a cookie-authenticated publish comes from an origin
    /// that is not allowed.
    pub(crate) fn check(
        &self,
        role: Role,
        headers: &HeaderMap,
        query: &Query,
    ) -> Result<Grant, ApiError> {
        let keys = match role {
            Role::Publish => self.publisher.as_ref(),
            Role::Subscribe => self.subscriber.as_ref(),
        };
        let anonymous = match role {
            Role::Publish => self.anonymous_publish,
            Role::Subscribe => self.anonymous_subscribe,
        };
        let anonymous_grant = Grant {
            publish: PublishRights::Any,
            ..Grant::default()
        };
        let found = find_token(headers, query, &self.cookie_name)?;
        if role == Role::Publish {
            let token_in_request = keys.is_some() && found.as_ref().is_some_and(|(_, c)| !c);
            crate::trust::check_publish_origin(headers, &self.allowed_origins, token_in_request)?;
        }
        let (token, from_cookie) = match (found, keys) {
            (Some(found), Some(_)) => found,
            // Without keys for this role, tokens are meaningless: anonymous rules apply.
            (_, None) | (None, Some(_)) => {
                if role == Role::Publish
                    && anonymous
                    && self.anonymous_publish_local_only
                    && !crate::trust::is_local(headers, self.trusted_proxy)
                {
                    return Err(unauthorized(
                        "anonymous publishing is for local clients only, and this request came through a proxy; \
                         send a token (or configure --trusted-proxy)",
                    ));
                }
                return if anonymous {
                    Ok(match role {
                        Role::Publish => anonymous_grant,
                        Role::Subscribe => Grant::default(),
                    })
                } else {
                    Err(unauthorized(match role {
                        Role::Publish => {
                            "publishing needs a token (Authorization: Bearer, the authorization parameter, or the cookie)"
                        }
                        Role::Subscribe => {
                            "subscribing needs a token (Authorization: Bearer, the authorization parameter, or the cookie)"
                        }
                    }))
                };
            }
        };
        let keys = keys.expect("matched Some above");
        let claims = keys
            .verify(&token)
            .map_err(|why| unauthorized(format!("the token was refused: {why}")))?;
        let rights = claims.mercure.or(claims.namespaced).unwrap_or_default();
        let grant = Grant {
            publish: match (role, selector(rights.publish.as_ref())) {
                (Role::Publish, Some(topics)) => PublishRights::Topics(topics),
                // A publisher token without `publish` may publish nothing.
                _ => PublishRights::Nothing,
            },
            subscribe: selector(rights.subscribe.as_ref()),
            payload: rights.payload,
            // An `exp` past what the clock can represent (2^63 s and more) is the far future,
            // not a panic: such a token simply does not expire.
            expires_at: claims
                .exp
                .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s))),
            from_cookie,
        };
        if role == Role::Publish && from_cookie {
            self.check_origin(headers)?;
        }
        Ok(grant)
    }

    /// CSRF: a cookie-authenticated POST must name an allowed origin, listed by name: `*`
    /// (any origin for CORS) does not count, since it would let every site publish with the
    /// user's cookie.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let origin = headers
            .get(axum::http::header::ORIGIN)
            .or_else(|| headers.get(axum::http::header::REFERER))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let allowed = !origin.is_empty()
            && self.allowed_origins.iter().any(|o| {
                o != "*"
                    && (origin == o
                        || origin
                            .strip_prefix(o.as_str())
                            .is_some_and(|r| r.starts_with('/')))
            });
        if allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                Reason::Forbidden,
                "a publish authenticated by cookie must come from an allowed Origin",
            ))
        }
    }
}
