//! The router as hyper's service, with the connection layer's accounting around each request:
//! it is in flight (for the connection's timers, see `activity.rs`) until its response body
//! is done, and its body must arrive within `body_read_timeout` — past that, the request
//! gets 408 and the connection closes. Requests over HTTP/2 are counted in
//! `ssehub_http2_open_streams` for as long as they are in flight.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse as _;
use hyper::body::{Frame, Incoming, SizeHint};
use ssehub_http::{ApiError, BodyTimeout, ConnMetrics, ConnTimeout, Reason};
use tower::ServiceExt as _;

use crate::activity::{Activity, InFlight};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's service for one connection.
#[derive(Clone)]
pub(crate) struct HubService {
    pub(crate) app: Router,
    pub(crate) activity: Arc<Activity>,
    pub(crate) body_timeout: Duration,
    pub(crate) metrics: ConnMetrics,
}

impl hyper::service::Service<Request<Incoming>> for HubService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.start();
        let stream = (request.version() == axum::http::Version::HTTP_2)
            .then(|| OpenStream::new(self.metrics.http2_streams_gauge()));
        let timed_out = Arc::new(AtomicBool::new(false));
        let request = if request.body().is_end_stream() {
            request.map(Body::new)
        } else {
            let timed_out = timed_out.clone();
            let timeout = self.body_timeout;
            request.map(move |body| {
                Body::new(Deadline {
                    inner: body,
                    sleep: Box::pin(tokio::time::sleep(timeout)),
                    timed_out,
                })
            })
        };
        let app = self.app.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if timed_out.load(Ordering::Acquire) {
                // Whatever the handler made of the failed body, the client gets told why.
                metrics.record_timeout(ConnTimeout::Body);
                let mut response = ApiError::new(
                    Reason::RequestTimeout,
                    "the request body did not arrive in time",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(response.map(|body| {
                    Body::new(Guarded {
                        inner: body,
                        in_flight,
                        stream,
                    })
                }));
            }
            Ok(response.map(|body| {
                Body::new(Guarded {
                    inner: body,
                    in_flight,
                    stream,
                })
            }))
        })
    }
}

/// A request body that fails once `sleep` is over.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Deadline {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it is done or dropped.
struct Guarded {
    inner: Body,
    #[expect(dead_code, reason = "held for its Drop")]
    in_flight: InFlight,
    #[expect(dead_code, reason = "held for its Drop")]
    stream: Option<OpenStream>,
}

/// One open HTTP/2 stream in `ssehub_http2_open_streams`, until dropped with its response.
struct OpenStream(prometheus_client::metrics::gauge::Gauge);

impl OpenStream {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        OpenStream(gauge.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HttpBody for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
