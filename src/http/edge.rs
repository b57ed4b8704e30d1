//! The outer middleware as one service: head and body limits, the request id, the request's log span and time limit, problem documents for bare error answers, and the headers every answer carries — one future per request instead of a layer (and a boxed future) each.
//!
//! Order, as a request meets it: a head over the limits is answered 414/431 at once; the
//! request id is taken or made; the log span opens; a body declared over its limit is answered
//! 413, any other is read through a limit; the inner service (panics caught, CORS, the router)
//! runs within the time limit; a bare error answer (404, 405, 413, a timeout, a panic) becomes a
//! problem document; the log line is written; the answer gets the request id, `nosniff`, behind
//! https HSTS, and under `/api/v1` `Cache-Control: no-store`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use super::problem::{self, Problem};
use super::{
    API_PREFIX, BATCH_BODY_LIMIT, BATCH_PATH, BODY_LIMIT, MAX_HEAD_BYTES, MAX_HEADERS,
    MAX_URI_BYTES,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the inner service in [`Edge`].
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    /// Longest a request may take before it is answered 503.
    pub timeout: Duration,
    /// Whether answers carry `Strict-Transport-Security` (the public URL is https).
    pub hsts: bool,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            timeout: self.timeout,
            hsts: self.hsts,
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    timeout: Duration,
    hsts: bool,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let headers = Headers {
            hsts: self.hsts,
            no_store: is_api(req.uri().path()),
        };
        if let Some(refused) = refuse_head(&req) {
            return Box::pin(std::future::ready(Ok(headers.finish(refused, None))));
        }
        let id = match req.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let mut text = uuid::Uuid::encode_buffer();
                let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
                let id = HeaderValue::from_str(text).expect("a UUID is a header value");
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        // The path only: query strings may carry tokens. The route template and the caller's
        // user id are filled in once known.
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            route = tracing::field::Empty,
            request_id = %id.to_str().unwrap_or(""),
            user_id = tracing::field::Empty,
        );
        let started = Instant::now();
        let limit = if req.uri().path() == BATCH_PATH {
            BATCH_BODY_LIMIT
        } else {
            BODY_LIMIT
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let inner = if declared.is_some_and(|n| n > limit as u64) {
            None
        } else {
            let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
            let _entered = span.enter();
            Some(self.inner.call(req))
        };
        let timeout = self.timeout;
        Box::pin(async move {
            let res = match inner {
                None => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response(),
                Some(inner) => {
                    match tokio::time::timeout(timeout, inner.instrument(span.clone())).await {
                        Ok(Ok(res)) => res,
                        Err(_elapsed) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }
            };
            let res = problem::for_bare_error(res);
            let status = res.status();
            let millis = started.elapsed().as_millis();
            if status.is_server_error() {
                tracing::error!(parent: &span, latency = %format_args!("{millis} ms"), status = status.as_u16(), "response failed");
            }
            tracing::info!(parent: &span, latency = %format_args!("{millis} ms"), status = status.as_u16(), "finished processing request");
            Ok(headers.finish(res, Some(id)))
        })
    }
}

/// 414 or 431 as a problem document when the request target or head is over our limits (heads
/// within what hyper itself reads).
fn refuse_head(req: &Request) -> Option<Response> {
    let uri = req.uri();
    let target = uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(
            Problem::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!("the request target is longer than {MAX_URI_BYTES} bytes"),
            )
            .into_response(),
        );
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if head > MAX_HEAD_BYTES || req.headers().len() > MAX_HEADERS {
        return Some(
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!(
                    "send at most {MAX_HEADERS} header fields and {MAX_HEAD_BYTES} bytes of them"
                ),
            )
            .into_response(),
        );
    }
    None
}

/// Whether `path` is under `/api/v1`.
fn is_api(path: &str) -> bool {
    path.strip_prefix(API_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The headers every answer carries: the request id (unless the handler set one), `nosniff`,
/// HSTS behind https, and `no-store` under `/api/v1` (every API answer may carry a token, a
/// secret, a QR code or recovery codes: RFC 6749 §5.1).
#[derive(Clone, Copy)]
struct Headers {
    hsts: bool,
    no_store: bool,
}

impl Headers {
    fn finish(self, mut res: Response, id: Option<HeaderValue>) -> Response {
        let headers = res.headers_mut();
        if let Some(id) = id {
            headers.entry(REQUEST_ID).or_insert(id);
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
        if self.no_store {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        res
    }
}
