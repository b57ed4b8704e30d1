//! Operational endpoints at the server root: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Gatehouse;

/// The longest `/ready` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process answers.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    status: &'static str,
    checks: std::collections::BTreeMap<&'static str, Check>,
}

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers (503 with the failing checks otherwise): a pooled connection answers a
/// ping within 2 s; while the database is known to be unreachable, 503 at once.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(gh): State<Gatehouse>) -> impl IntoResponse {
    let circuit = gh.database_circuit();
    let ping = if circuit.is_open() {
        None
    } else {
        // Answer as soon as the circuit opens (the ping may be waiting for a connection).
        let opened = circuit.opened();
        tokio::select! {
            ping = gh.ping_database(READY_TIMEOUT) => Some(ping.inspect_err(|e| {
                tracing::warn!(error = %e, "readiness: database did not answer");
                circuit.suspect();
            })),
            () = opened => None,
        }
    };
    let check = match ping {
        Some(Ok(latency)) => Check {
            status: "ok",
            latency_ms: Some(latency.as_secs_f64() * 1000.0),
            error: None,
        },
        Some(Err(_)) => Check {
            status: "unavailable",
            latency_ms: None,
            error: Some("the database did not answer"),
        },
        None => Check {
            status: "unavailable",
            latency_ms: None,
            error: Some("the database is unreachable"),
        },
    };
    let ok = check.status == "ok";
    let body = Readiness {
        status: if ok { "ok" } else { "unavailable" },
        checks: [("database", check)].into(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses(
    (status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi(State(gh): State<Gatehouse>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        gh.openapi_json(),
    )
}

/// The public keys access tokens are signed with (empty for HS256).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses(
    (status = 200, description = "JWK set", content_type = "application/json")))]
async fn jwks(State(gh): State<Gatehouse>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(gh.auth().jwt().jwks().clone()),
    )
}

/// Prometheus text format: requests by route and status, logins, rate limits, mail.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
}

pub fn routes() -> OpenApiRouter<Gatehouse> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(jwks))
        .routes(routes!(ready))
        .routes(routes!(openapi))
}
