//! A client of an ssehub hub's publish API: [`HubClient::publish`] sends events with
//! `POST /topics/{topic}` (one) or `POST /publish` (a batch) and returns their ids.
//!
//! Errors are sentences a user can act on: whether the hub could not be reached (and so the
//! event may be retried) or refused the event (and why, in the hub's own words). The
//! `ssehub pub`, `tail` and `exec` commands print them as they are.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One event to publish: an item of a `POST /publish` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEvent {
    /// The topic it goes to.
    pub topic: String,
    /// Its data (text). Not sent when `binary` is set.
    pub data: String,
    /// Bytes to publish as a binary event instead of `data` (sent as `data_base64` in a
    /// batch, as an `application/octet-stream` body alone); subscribers get them marked as
    /// binary ([`binary_data`](crate::binary_data) decodes them).
    pub binary: Option<Vec<u8>>,
    /// Its type; `None` is the default type, `message`.
    pub event: Option<String>,
    /// The publisher's own id for it (its SSE id, and what the hub answers); `None`: the
    /// hub's. An id already used by an event the hub retains is refused (409).
    pub id: Option<String>,
    /// The key it is the newest value of (snapshots start with each key's newest value).
    pub key: Option<String>,
    /// The key's tombstone instead: the key leaves snapshots (`data` is dropped).
    pub delete: bool,
}

/// A batch item: `data`, or for a binary event `data_base64` instead (the hub takes exactly
/// one of the two), then the optional fields when set.
impl Serialize for PublishEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("topic", &self.topic)?;
        match &self.binary {
            Some(bytes) => map.serialize_entry("data_base64", &crate::binary::encode(bytes))?,
            None => map.serialize_entry("data", &self.data)?,
        }
        if let Some(event) = &self.event {
            map.serialize_entry("event", event)?;
        }
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        if let Some(key) = &self.key {
            map.serialize_entry("key", key)?;
        }
        if self.delete {
            map.serialize_entry("delete", &true)?;
        }
        map.end()
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The hub could not be reached, or did not answer: worth retrying.
    #[error("cannot reach the hub at {url}: {}", root_cause(cause))]
    Unreachable {
        /// The hub's base URL.
        url: String,
        /// What failed.
        cause: reqwest::Error,
    },
    /// The hub answered with an error.
    #[error("the hub refused the event ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The hub's error code (`error` in its JSON answer), `http_error` when the answer
        /// was not the hub's JSON, `bad_answer` when a success could not be read.
        code: String,
        /// The hub's explanation.
        message: String,
    },
}

impl PublishError {
    /// Whether trying again later may succeed (unreachable, or 503 or 429 from the hub).
    pub fn is_retryable(&self) -> bool {
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

/// A publish client for one hub (connect timeout 5 s, request timeout 30 s).
#[derive(Debug, Clone)]
pub struct HubClient {
    base: String,
    http: reqwest::Client,
}

impl HubClient {
    /// A client of the hub at `base` (`http://host:port`, a trailing `/` is ignored).
    pub fn new(base: &str) -> Self {
        HubClient::with(base, Self::http_builder())
    }

    /// A client of the hub at `base` that checks an `https://` hub's certificate as `trust`
    /// says (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn with_tls(base: &str, trust: &crate::TlsTrust) -> Self {
        HubClient::with(base, trust.apply(Self::http_builder()))
    }

    fn http_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
    }

    fn with(base: &str, http: reqwest::ClientBuilder) -> Self {
        HubClient {
            base: base.trim_end_matches('/').to_string(),
            http: http
                .build()
                .expect("a client with these settings always builds"),
        }
    }

    /// Publishes `events` in one request (`POST /publish`); returns their ids in order.
    pub async fn publish(&self, events: &[PublishEvent]) -> Result<Vec<String>, PublishError> {
        let unreachable = |cause| PublishError::Unreachable {
            url: self.base.clone(),
            cause,
        };
        let request = match events {
            // One event: the single-event endpoint, whose errors need no index.
            [one] => {
                let mut url = format!("{}/topics/{}", self.base, encode_topic_path(&one.topic));
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(event) = &one.event {
                    query.append_pair("event", event);
                }
                if let Some(id) = &one.id {
                    query.append_pair("id", id);
                }
                if let Some(key) = &one.key {
                    query.append_pair("key", key);
                }
                if one.delete {
                    query.append_pair("delete", "true");
                }
                let query = query.finish();
                if !query.is_empty() {
                    url.push('?');
                    url.push_str(&query);
                }
                match &one.binary {
                    Some(bytes) => self
                        .http
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(bytes.clone()),
                    None => self.http.post(url).body(one.data.clone()),
                }
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

/// Percent-encodes each segment of a topic, keeping the `/` between them: the topic as the
/// path after `/topics/`.
pub fn encode_topic_path(topic: &str) -> String {
    topic
        .split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'*' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_paths_keep_their_slashes() {
        assert_eq!(encode_topic_path("a/b"), "a/b");
        assert_eq!(encode_topic_path("a b/ü"), "a%20b/%C3%BC");
        assert_eq!(encode_topic_path("a?b#c/*"), "a%3Fb%23c/*");
    }

    #[test]
    fn only_overload_is_worth_retrying() {
        let refused = |status| PublishError::Refused {
            status,
            code: "x".into(),
            message: "y".into(),
        };
        assert!(refused(503).is_retryable());
        assert!(refused(429).is_retryable());
        assert!(!refused(400).is_retryable());
        assert!(!refused(413).is_retryable());
    }

    #[test]
    fn the_default_event_type_is_not_sent() {
        let event = |event: Option<&str>| PublishEvent {
            topic: "t".into(),
            data: "d".into(),
            event: event.map(Into::into),
            id: None,
            key: None,
            delete: false,
            binary: None,
        };
        assert_eq!(
            serde_json::to_string(&event(None)).unwrap(),
            r#"{"topic":"t","data":"d"}"#
        );
        assert_eq!(
            serde_json::to_string(&event(Some("log"))).unwrap(),
            r#"{"topic":"t","data":"d","event":"log"}"#
        );
        let binary = PublishEvent {
            binary: Some(vec![0, 0xff]),
            ..event(Some("thumb"))
        };
        assert_eq!(
            serde_json::to_string(&binary).unwrap(),
            r#"{"topic":"t","data_base64":"AP8=","event":"thumb"}"#,
            "a binary event's item has data_base64 instead of data"
        );
    }
}
