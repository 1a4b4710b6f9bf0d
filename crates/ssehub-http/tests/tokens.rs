//! The ways a request carries a token (signed by `jwt`), and what a refusal must say.

use axum::http::{Method, StatusCode};

use crate::util::{Req, Res, TestApp};

/// Where a request carries its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// No token at all.
    Nowhere,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `?authorization=<token>`.
    Query,
    /// `Cookie: mercureAuthorization=<token>`.
    Cookie,
}

impl How {
    /// Every way of sending a token.
    pub(crate) const ALL: [How; 3] = [How::Bearer, How::Query, How::Cookie];

    /// How a table shows it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            How::Nowhere => "-",
            How::Bearer => "Bearer",
            How::Query => "?authorization=",
            How::Cookie => "cookie",
        }
    }
}

/// A request to `path` with `token` where `how` says, and an `Origin` header if given.
pub(crate) fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    how: How,
    token: &str,
    origin: Option<&str>,
) -> Req {
    let mut path = path.to_string();
    if how == How::Query {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str("authorization=");
        path.extend(form_urlencoded::byte_serialize(token.as_bytes()));
    }
    let mut request = app.request(method, &path);
    match how {
        How::Bearer => request = request.bearer_auth(token),
        How::Cookie => request = request.header("cookie", format!("mercureAuthorization={token}")),
        How::Nowhere | How::Query => {}
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request
}

/// Asserts a 401 answer says how to authenticate, and that no refusal echoes `token`.
pub(crate) async fn check_refusal(response: Res, token: &str) -> StatusCode {
    let status = response.status();
    if status == 401 {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "a 401 carries WWW-Authenticate: Bearer …, got {challenge:?}"
        );
    }
    if !status.is_success() {
        let body = response.text().await;
        assert!(
            token.len() < 8 || !body.contains(token),
            "the error body echoes the token: {body}"
        );
    }
    status
}
