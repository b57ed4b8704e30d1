//! The one layer every matched route runs inside: its metrics and the route in the log span, and for the API the database circuit — hand-written with a concrete future, so a route pays one wrapper instead of a boxed future and a cloned service per concern.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::problem::{DatabaseUnavailable, Problem};
use crate::store::circuit::Circuit;

/// Wraps each route in [`Routed`]: with a circuit for routes that need the database.
#[derive(Clone, Default)]
pub(crate) struct RoutedLayer {
    circuit: Option<Circuit>,
}

impl RoutedLayer {
    /// Metrics only (operations, pages: they answer while the database is away).
    pub fn metrics() -> Self {
        Self::default()
    }

    /// Metrics, and 503 at once while `circuit` is open (or as soon as it opens during the
    /// request); a request that met an unreachable database makes the circuit check it.
    pub fn guarded(circuit: Circuit) -> Self {
        Self {
            circuit: Some(circuit),
        }
    }
}

impl<S> Layer<S> for RoutedLayer {
    type Service = Routed<S>;

    fn layer(&self, inner: S) -> Routed<S> {
        Routed {
            inner,
            circuit: self.circuit.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct Routed<S> {
    inner: S,
    circuit: Option<Circuit>,
}

impl<S> Service<Request> for Routed<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RoutedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        // The request's log span names the route template (never the path's values).
        if let Some(route) = &route {
            tracing::Span::current().record("route", route.as_str());
        }
        let method = crate::telemetry::method_label(req.method());
        let started = Instant::now();
        let circuit = self.circuit.clone();
        let inner = if circuit.as_ref().is_some_and(Circuit::is_open) {
            None
        } else {
            Some(self.inner.call(req))
        };
        RoutedFuture {
            inner,
            opened: None,
            circuit,
            started,
            method,
            route,
        }
    }
}

pin_project! {
    /// The route's answer, counted and timed; 503 if the circuit opens while it waits.
    pub(crate) struct RoutedFuture<F> {
        #[pin]
        inner: Option<F>,
        // Armed only once the route waits: an answer ready at the first poll (a cached
        // principal) never subscribes to the circuit.
        opened: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
        circuit: Option<Circuit>,
        started: Instant,
        method: &'static str,
        route: Option<MatchedPath>,
    }
}

impl<F> Future for RoutedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let res = match this.inner.as_mut().as_pin_mut() {
            None => Problem::database_unavailable().into_response(),
            Some(inner) => match inner.poll(cx) {
                Poll::Ready(Ok(res)) => {
                    if let Some(circuit) = this.circuit
                        && res.extensions().get::<DatabaseUnavailable>().is_some()
                    {
                        circuit.suspect();
                    }
                    res
                }
                Poll::Pending => {
                    let Some(circuit) = this.circuit else {
                        return Poll::Pending;
                    };
                    // The circuit's watch says "open" at once if it opened before this point.
                    let opened = this
                        .opened
                        .get_or_insert_with(|| Box::pin(circuit.opened()));
                    ready!(opened.as_mut().poll(cx));
                    this.inner.set(None);
                    Problem::database_unavailable().into_response()
                }
            },
        };
        if let Some(route) = this.route {
            crate::telemetry::record_request(
                this.method,
                route.as_str(),
                res.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(Ok(res))
    }
}
