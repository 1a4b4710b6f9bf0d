//! Talking to a hub's publish API from the command line (`pub`, `tail`, `exec`).
//!
//! Errors are sentences a user can act on: whether the hub could not be reached (and so the
//! event may be retried) or refused the event (and why, in the hub's own words).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One event to publish.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EventToPublish {
    pub(crate) topic: String,
    pub(crate) data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) event: Option<String>,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The hub could not be reached, or did not answer: worth retrying.
    #[error("cannot reach the hub at {url}: {}", root_cause(cause))]
    Unreachable { url: String, cause: reqwest::Error },
    /// The hub answered with an error.
    #[error("the hub refused the event ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl PublishError {
    /// Whether trying again later may succeed (unreachable, or 503 from the hub).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            PublishError::Unreachable { .. } => true,
            PublishError::Refused { status, .. } => *status == 503 || *status == 429,
        }
    }
}

/// The innermost error: "Connection refused (os error 111)" rather than reqwest's chain.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if error.is_timeout() {
        return "timed out".into();
    }
    cause.to_string()
}

#[derive(Deserialize)]
struct ApiError {
    error: String,
    message: String,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<String>,
}

/// A publish client for one hub.
#[derive(Debug, Clone)]
pub(crate) struct HubClient {
    base: String,
    http: reqwest::Client,
}

impl HubClient {
    pub(crate) fn new(base: &str) -> Self {
        HubClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client always builds"),
        }
    }

    /// Publishes `events` in one request (`POST /publish`); returns their ids in order.
    pub(crate) async fn publish(
        &self,
        events: &[EventToPublish],
    ) -> Result<Vec<String>, PublishError> {
        let unreachable = |cause| PublishError::Unreachable {
            url: self.base.clone(),
            cause,
        };
        let request = match events {
            // One event: the single-event endpoint, whose errors need no index.
            [one] => {
                let mut url = format!(
                    "{}/topics/{}",
                    self.base,
                    crate::sub_command::encode_path(&one.topic)
                );
                if let Some(event) = &one.event {
                    url.push_str("?event=");
                    url.extend(form_urlencoded::byte_serialize(event.as_bytes()));
                }
                self.http.post(url).body(one.data.clone())
            }
            many => self.http.post(format!("{}/publish", self.base)).json(many),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            let bad = |e: serde_json::Error| PublishError::Refused {
                status: status.as_u16(),
                code: "bad_answer".into(),
                message: format!("unexpected answer from the hub: {e}"),
            };
            if events.len() == 1 {
                let one: Id = serde_json::from_slice(&body).map_err(bad)?;
                return Ok(vec![one.id]);
            }
            let ids: Ids = serde_json::from_slice(&body).map_err(bad)?;
            return Ok(ids.ids);
        }
        let (code, message) = match serde_json::from_slice::<ApiError>(&body) {
            Ok(e) => (e.error, e.message),
            Err(_) => (
                "http_error".into(),
                String::from_utf8_lossy(&body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect(),
            ),
        };
        Err(PublishError::Refused {
            status: status.as_u16(),
            code,
            message,
        })
    }
}
