//! `/usage*`, `/me/usage`, `/users/{id}/usage`, `/me/billing` and `/admin/billing*`: services report metered usage (idempotently, alone or in batches), users and admins read it, and admins close billing periods and settle their records.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Area;
use uuid::Uuid;

use super::admin::PageQuery;
use super::extract::path_id;
use super::extract::{Client, CurrentUser, RequirePermission, RequireServiceKey, perm};
use super::json::{ApiJson, ApiQuery};
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::billing::{BillingQuery, BillingView, ClosedPeriod};
use crate::service::usage::{BatchRecorded, Recorded, UsageEvent, UsageReport, UsageView};
use crate::service::views::Page;
use crate::service::{Paging, ServiceError};

/// The header a client sends so a retried call is stored once.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header on an answer replayed from an earlier call with the same key.
const REPLAYED: &str = "idempotent-replayed";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    user_id: Uuid,
    /// 1 to 64 letters, digits and `. _ - : /`.
    #[schema(example = "openai")]
    service: String,
    /// 1 to 128 letters, digits and `. _ - : /`.
    #[schema(example = "gpt-4o-mini")]
    model: String,
    /// 1 to 64 letters, digits and `. _ - : /`.
    #[schema(example = "chat")]
    request_type: String,
    /// 0 to 10^12.
    #[schema(example = 1234)]
    tokens_used: i64,
    /// A decimal string with at most 6 decimals, 0 to 1000000 (never a JSON number: money is
    /// exact). Give this or `cost_micros`.
    #[schema(example = "0.0125")]
    cost: Option<String>,
    /// The cost in millionths of the currency unit, 0 to 10^12. Give this or `cost`.
    cost_micros: Option<i64>,
    /// RFC 3339, 2000-01-01 to 9999-12-31; now when absent.
    occurred_at: Option<DateTime<Utc>>,
}

impl From<UsageRequest> for UsageEvent {
    fn from(r: UsageRequest) -> Self {
        UsageEvent {
            user_id: r.user_id,
            service: r.service,
            model: r.model,
            request_type: r.request_type,
            tokens_used: r.tokens_used,
            cost: r.cost,
            cost_micros: r.cost_micros,
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatchRequest {
    /// 1 to 1,000 events, stored all or none.
    events: Vec<UsageRequest>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339, inclusive; all time when absent.
    since: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive; all time when absent.
    until: Option<DateTime<Utc>>,
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillingListQuery {
    user_id: Option<Uuid>,
    /// `pending`, `paid` or `void`.
    status: Option<String>,
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosePeriodRequest {
    /// RFC 3339, inclusive.
    #[schema(example = "2026-11-01T00:00:00Z")]
    period_start: DateTime<Utc>,
    /// RFC 3339, exclusive.
    #[schema(example = "2026-12-01T00:00:00Z")]
    period_end: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `paid` or `void`.
    #[schema(example = "paid")]
    status: String,
}

/// The `Idempotency-Key` header, if sent (a value that is not visible ASCII is refused).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ServiceError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str().map_err(|_| {
                ServiceError::invalid(
                    "idempotency_key",
                    "invalid_idempotency_key",
                    "must be visible ASCII",
                )
            })
        })
        .transpose()
}

/// 201 with the body, marked `Idempotent-Replayed: true` when it repeats an earlier answer.
fn created<T: Serialize>(recorded: Recorded<T>) -> Response {
    let mut res = (StatusCode::CREATED, axum::Json(recorded.value)).into_response();
    if recorded.replayed {
        res.headers_mut().insert(
            HeaderName::from_static(REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    res
}

/// Report one usage event (a service API key with `usage:write`). With `Idempotency-Key`, a retry stores nothing new and answers the first event.
#[utoipa::path(post, path = "/usage", tag = "usage", security(("bearer" = [])), request_body = UsageRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 100 visible ASCII characters; a retry with the same key and body is stored once")),
    responses(
    (status = 201, body = UsageView, headers(("Idempotent-Replayed" = String, description = "`true` when the answer repeats the event stored by an earlier call with this key"))),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "service_key_required: a person's token; insufficient_permission: a key without `usage:write`", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: invalid_length, invalid_characters, negative, too_large, invalid_amount, too_precise, cost_required, out_of_range, unknown_user, invalid_idempotency_key, idempotency_key_reused", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn record(
    State(gh): State<Gatehouse>,
    RequireServiceKey(key, ..): RequireServiceKey<perm::UsageWrite>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<UsageRequest>,
) -> Result<Response, ServiceError> {
    let idem = idempotency_key(&headers)?;
    Ok(created(gh.usage().record(&key, req.into(), idem).await?))
}

/// Report up to 1,000 usage events at once, all or none (a service API key with `usage:write`; bodies up to 1 MiB). With `Idempotency-Key`, a retry stores nothing new.
#[utoipa::path(post, path = "/usage/batch", tag = "usage", security(("bearer" = [])), request_body = UsageBatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 100 visible ASCII characters; a retry with the same key and body is stored once")),
    responses(
    (status = 201, body = BatchRecorded, headers(("Idempotent-Replayed" = String, description = "`true` when the answer repeats the events stored by an earlier call with this key"))),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 1 MiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "service_key_required: a person's token; insufficient_permission: a key without `usage:write`", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: `events` (invalid_length: 0 or over 1,000 events; each broken rule of an event, named `events[i].field` in the message), invalid_idempotency_key, idempotency_key_reused", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn record_batch(
    State(gh): State<Gatehouse>,
    RequireServiceKey(key, ..): RequireServiceKey<perm::UsageWrite>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<UsageBatchRequest>,
) -> Result<Response, ServiceError> {
    let idem = idempotency_key(&headers)?;
    let events = req.events.into_iter().map(UsageEvent::from).collect();
    Ok(created(gh.usage().record_batch(&key, events, idem).await?))
}

/// The caller's usage over `[since, until)`: totals, per service, per service and model, and a page of events.
#[utoipa::path(get, path = "/me/usage", tag = "usage", security(("bearer" = [])), params(UsageQuery), responses(
    (status = 200, body = UsageReport),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range; until not after since (empty_period), out_of_range", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn my_usage(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<UsageReport>, ServiceError> {
    usage_of(&gh, who.user_id, q).await
}

async fn usage_of(
    gh: &Gatehouse,
    user_id: Uuid,
    q: UsageQuery,
) -> Result<axum::Json<UsageReport>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    let report = gh.usage().report(user_id, q.since, q.until, paging).await?;
    Ok(axum::Json(report))
}

/// Any user's usage, as `/me/usage` shows it (admin and up: `billing:manage`).
#[utoipa::path(get, path = "/users/{id}/usage", tag = "usage", security(("bearer" = [])), params(("id" = Uuid, Path), UsageQuery), responses(
    (status = 200, body = UsageReport),
    (status = 400, description = "invalid_query: a query parameter of the wrong type; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `billing:manage` (admin and up)", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, or not a UUID", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range; until not after since (empty_period), out_of_range", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn user_usage(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::BillingManage>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<UsageReport>, ServiceError> {
    usage_of(&gh, path_id(&id)?, q).await
}

/// The caller's billing records, latest period first.
#[utoipa::path(get, path = "/me/billing", tag = "billing", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = Page<BillingView>),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn my_billing(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<BillingView>>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    Ok(axum::Json(gh.billing().mine(&who, paging).await?))
}

/// Every billing record, latest period first, filtered by user and status (admin and up: `billing:manage`).
#[utoipa::path(get, path = "/admin/billing", tag = "billing", security(("bearer" = [])), params(BillingListQuery), responses(
    (status = 200, body = Page<BillingView>),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `billing:manage` (admin and up)", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range, unknown_status", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn list_billing(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::BillingManage>,
    ApiQuery(q): ApiQuery<BillingListQuery>,
) -> Result<axum::Json<Page<BillingView>>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    let query = BillingQuery {
        user_id: q.user_id,
        status: q.status,
    };
    Ok(axum::Json(gh.billing().list(query, paging).await?))
}

/// Close a billing period: one `pending` record per user with usage in `[period_start, period_end)`, made once however often (or on however many instances) this is called (admin and up: `billing:manage`).
#[utoipa::path(post, path = "/admin/billing/close-period", tag = "billing", security(("bearer" = [])), request_body = ClosePeriodRequest, responses(
    (status = 200, body = ClosedPeriod),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `billing:manage` (admin and up)", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "period_overlaps: a closed period overlaps this one without being it", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: empty_period (period_end not after period_start), out_of_range", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn close_period(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::BillingManage>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<ClosePeriodRequest>,
) -> Result<axum::Json<ClosedPeriod>, ServiceError> {
    let closed = gh
        .billing()
        .close_period(&who, req.period_start, req.period_end, &client)
        .await?;
    Ok(axum::Json(closed))
}

/// Mark a billing record `paid` or `void` (pending → paid or void, paid → void); audited (admin and up: `billing:manage`).
#[utoipa::path(patch, path = "/admin/billing/{id}", tag = "billing", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = StatusRequest, responses(
    (status = 200, body = BillingView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `billing:manage` (admin and up)", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such record, or not a UUID", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "invalid_status_change: e.g. a void record cannot become paid", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: unknown_status", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn set_status(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::BillingManage>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<axum::Json<BillingView>, ServiceError> {
    let record = gh
        .billing()
        .set_status(&who, path_id(&id)?, &req.status, &client)
        .await?;
    Ok(axum::Json(record))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(record))
        .routes(routes!(record_batch))
        .routes(routes!(my_usage))
        .routes(routes!(user_usage))
        .routes(routes!(my_billing))
        .routes(routes!(list_billing))
        .routes(routes!(close_period))
        .routes(routes!(set_status))
}
