//! API errors: one JSON shape, a status that says whose fault it was, and a metric label.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a request was refused: the `reason` label of `ssehub_rejected_requests_total` and the
/// `error` field of the JSON body. Low cardinality by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The body is larger than the configured maximum (413).
    BodyTooLarge,
    /// A topic or pattern is not valid (400).
    InvalidTopic,
    /// A publisher's event id is empty, over `limits.max_id_bytes`, starts with `#`, holds
    /// CR, LF or NUL, or has the shape of a hub id (400).
    InvalidId,
    /// A publisher's key is empty, over `limits.max_key_bytes` or holds CR, LF or NUL; or a
    /// tombstone without a key (400).
    InvalidKey,
    /// A publisher's event id is already the id of a retained event, or of another event of
    /// the same request (409).
    IdConflict,
    /// An event type holds CR or LF, or uses the reserved `ssehub-` prefix (400).
    InvalidEvent,
    /// The body is not valid UTF-8 (400).
    InvalidUtf8,
    /// The body is not the JSON expected (400).
    InvalidJson,
    /// A batch item's `data_base64` is not standard base64 (400).
    InvalidBase64,
    /// A query parameter that this endpoint does not know (400).
    UnknownParameter,
    /// More topics in one subscription than allowed (400).
    TooManyTopics,
    /// More events in one batch than allowed (400).
    TooManyEvents,
    /// The hub holds as many streams as it may (503).
    OverConnectionLimit,
    /// The hub is shutting down (503).
    ShuttingDown,
    /// The event store failed or is full (503).
    StoreUnavailable,
    /// No such route (404).
    NotFound,
    /// A Mercure URI template over the limits on one template: too long, too many variables,
    /// or too large compiled (400).
    SelectorTooComplex,
    /// The hub holds as many compiled URI templates as its budget allows (503).
    OverSelectorBudget,
    /// A token was needed and missing, or was refused (401).
    Unauthorized,
    /// The token does not allow this (403).
    Forbidden,
    /// A publish from a page of another origin or site (403): see `trust.rs`.
    OriginNotAllowed,
    /// The `Host` is not one of the hub's names (421): DNS rebinding, see `trust.rs`.
    HostNotAllowed,
    /// The request body did not arrive within `limits.body_read_timeout_ms` (408; the
    /// connection is closed). Answered by the connection layer (`ssehub-server`).
    RequestTimeout,
    /// The request head is larger than `limits.max_head_bytes` or has more than
    /// `limits.max_headers` fields (431, written by hyper; counted by the connection layer).
    HeadTooLarge,
    /// A relay has as many answers in flight as its `max_streams` (503).
    OverRelayLimit,
    /// A relay's upstream could not be reached (502).
    BadGateway,
    /// A relay's upstream did not answer in time (504).
    GatewayTimeout,
    /// A relayed request's body could not be read: the client went away mid-way (400).
    BodyUnreadable,
}

impl Reason {
    /// The label and JSON code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BodyTooLarge => "body_too_large",
            Reason::InvalidTopic => "invalid_topic",
            Reason::InvalidId => "invalid_id",
            Reason::IdConflict => "id_conflict",
            Reason::InvalidKey => "invalid_key",
            Reason::InvalidEvent => "invalid_event",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidBase64 => "invalid_base64",
            Reason::UnknownParameter => "unknown_parameter",
            Reason::TooManyTopics => "too_many_topics",
            Reason::TooManyEvents => "too_many_events",
            Reason::OverConnectionLimit => "over_connection_limit",
            Reason::ShuttingDown => "shutting_down",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::NotFound => "not_found",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::OriginNotAllowed => "origin_not_allowed",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::RequestTimeout => "request_timeout",
            Reason::HeadTooLarge => "head_too_large",
            Reason::SelectorTooComplex => "selector_too_complex",
            Reason::OverSelectorBudget => "over_selector_budget",
            Reason::OverRelayLimit => "over_relay_limit",
            Reason::BadGateway => "bad_gateway",
            Reason::GatewayTimeout => "gateway_timeout",
            Reason::BodyUnreadable => "body_unreadable",
        }
    }

    /// Every reason, for pre-registering metric labels.
    pub const ALL: [Reason; 28] = [
        Reason::InvalidId,
        Reason::InvalidKey,
        Reason::IdConflict,
        Reason::SelectorTooComplex,
        Reason::OverSelectorBudget,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::OriginNotAllowed,
        Reason::HostNotAllowed,
        Reason::BodyTooLarge,
        Reason::InvalidTopic,
        Reason::InvalidEvent,
        Reason::InvalidUtf8,
        Reason::InvalidJson,
        Reason::InvalidBase64,
        Reason::UnknownParameter,
        Reason::TooManyTopics,
        Reason::TooManyEvents,
        Reason::OverConnectionLimit,
        Reason::ShuttingDown,
        Reason::StoreUnavailable,
        Reason::NotFound,
        Reason::RequestTimeout,
        Reason::HeadTooLarge,
        Reason::OverRelayLimit,
        Reason::BadGateway,
        Reason::GatewayTimeout,
        Reason::BodyUnreadable,
    ];

    fn status(self) -> StatusCode {
        match self {
            Reason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::NotFound => StatusCode::NOT_FOUND,
            Reason::IdConflict => StatusCode::CONFLICT,
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::Forbidden | Reason::OriginNotAllowed => StatusCode::FORBIDDEN,
            Reason::HostNotAllowed => StatusCode::MISDIRECTED_REQUEST,
            Reason::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reason::OverConnectionLimit
            | Reason::ShuttingDown
            | Reason::StoreUnavailable
            | Reason::OverSelectorBudget
            | Reason::OverRelayLimit => StatusCode::SERVICE_UNAVAILABLE,
            Reason::BadGateway => StatusCode::BAD_GATEWAY,
            Reason::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A refused request. Build it with [`ApiError::new`]; the handler that returns it also counts
/// it (see `metrics.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Why.
    pub reason: Reason,
    /// A sentence for the client. Never holds internal details or secrets.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with a message for the client.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.reason.status();
        let mut response = (
            status,
            Json(Body {
                error: self.reason.as_str(),
                message: &self.message,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ssehub\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The error a request body gives once `limits.body_read_timeout_ms` is over. The connection
/// layer (`ssehub-server`) sets it, answers 408 `request_timeout` and counts it; a handler
/// whose read fails with it must not count the failure as a refusal of its own
/// ([`BodyTimeout::caused`] tells them apart), or a slow-body attack would show up in
/// `/metrics` as clients sending broken JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl BodyTimeout {
    /// Whether `error`, or an error it wraps (bodies are boxed again by each layer), is a
    /// [`BodyTimeout`].
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(error);
        while let Some(error) = next {
            if error.is::<BodyTimeout>() {
                return true;
            }
            next = error.source();
        }
        false
    }
}
