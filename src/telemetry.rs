//! Prometheus metrics: one process-wide recorder for the `metrics` facade, rendered at `GET /metrics`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Install the recorder on first use. `None` when the host app installed its own recorder
/// first: then our metrics go to that one and `/metrics` shows nothing of ours.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "another metrics recorder is installed"))
                .ok()
                .inspect(|handle| {
                    // Histograms keep every sample until upkeep folds them into buckets; without
                    // a scrape of /metrics they would grow with every request. The recorder is
                    // process-wide, so its upkeep is a thread, not a task of one runtime.
                    let handle = handle.clone();
                    let _ = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                handle.run_upkeep();
                            }
                        });
                })
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric so far.
pub fn render() -> String {
    handle().map_or_else(String::new, |h| {
        h.run_upkeep();
        h.render()
    })
}

thread_local! {
    /// Each thread's handles to the request metrics, by route template: a handle is looked up
    /// once per route, method and status instead of registered (labels built, key hashed, the
    /// registry locked) on every request. The recorder is process-wide and set before the first
    /// request, so a handle never outlives the recorder it was made for.
    static ROUTES: RefCell<HashMap<String, RouteHandles>> = RefCell::new(HashMap::new());
}

#[derive(Default)]
struct RouteHandles {
    requests: Vec<(&'static str, u16, Counter)>,
    durations: Vec<(&'static str, Histogram)>,
}

/// Count one answered request of `route` (its template, never the path's values) by method and
/// status, and record how long it took.
pub fn record_request(method: &'static str, route: &str, status: u16, took: Duration) {
    ROUTES.with_borrow_mut(|routes| {
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteHandles::default());
        }
        let Some(handles) = routes.get_mut(route) else {
            return;
        };
        match handles
            .requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            Some((.., counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!("gatehouse_http_requests_total", "method" => method, "route" => route.to_string(), "status" => status.to_string());
                counter.increment(1);
                handles.requests.push((method, status, counter));
            }
        }
        match handles.durations.iter().find(|(m, _)| *m == method) {
            Some((_, histogram)) => histogram.record(took.as_secs_f64()),
            None => {
                let histogram = metrics::histogram!("gatehouse_http_request_duration_seconds", "method" => method, "route" => route.to_string());
                histogram.record(took.as_secs_f64());
                handles.durations.push((method, histogram));
            }
        }
    });
}

/// The method as a label without an allocation per request (the standard ones; others are `other`).
pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
