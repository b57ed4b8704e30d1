//! Metered usage reported by services: validated events stored once per idempotency key (alone or up to 1,000 at a time, all or nothing), and reports of a user's usage with exact totals.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::ServiceKey;
use super::error::{FieldError, ServiceError};
use super::paging::Paging;
use super::views::Page;
use crate::domain::Violation;
use crate::domain::billing::{self, Micros};
use crate::store::entities::usage_records;
use crate::store::usage::Sums;
use crate::store::{self, StoreError};

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 1_000;

/// One usage event as a service reports it.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    pub user_id: Uuid,
    pub service: String,
    pub model: String,
    pub request_type: String,
    pub tokens_used: i64,
    /// A decimal string (`"0.0125"`); or give `cost_micros`.
    pub cost: Option<String>,
    pub cost_micros: Option<i64>,
    /// When it happened; now when absent.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A stored usage event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub service: String,
    pub model: String,
    pub request_type: String,
    pub tokens_used: i64,
    /// Exact decimal, six places.
    #[schema(example = "0.012500")]
    pub cost: String,
    /// The same amount in millionths of the currency unit.
    #[schema(example = 12500)]
    pub cost_micros: i64,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl UsageView {
    fn new(r: usage_records::Model) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            service: r.service,
            model: r.model,
            request_type: r.request_type,
            tokens_used: r.tokens_used,
            cost: Micros(r.cost_micros).to_decimal(),
            cost_micros: r.cost_micros,
            occurred_at: r.occurred_at.unwrap_or(r.created_at),
            recorded_at: r.created_at,
        }
    }
}

/// A batch's answer: how many events it holds and their ids, in the order sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchRecorded {
    pub recorded: usize,
    pub ids: Vec<Uuid>,
}

/// What a write answered, and whether it was a replay of an earlier call with the same key.
#[derive(Debug, Clone)]
pub struct Recorded<T> {
    pub value: T,
    pub replayed: bool,
}

/// Requests, tokens and cost of a group of events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageTotals {
    /// The service, in `by_service` and `by_model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The model, in `by_model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub requests: i64,
    pub tokens_used: i64,
    #[schema(example = "12.345678")]
    pub cost: String,
    pub cost_micros: i64,
}

impl UsageTotals {
    fn new(s: Sums, service: bool, model: bool) -> Self {
        Self {
            service: service.then_some(s.service),
            model: model.then_some(s.model),
            requests: s.requests,
            tokens_used: s.tokens_used,
            cost: Micros(s.cost_micros).to_decimal(),
            cost_micros: s.cost_micros,
        }
    }
}

/// A user's usage over `[since, until)`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReport {
    pub user_id: Uuid,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub totals: UsageTotals,
    pub by_service: Vec<UsageTotals>,
    pub by_model: Vec<UsageTotals>,
    /// The events themselves, latest first.
    pub items: Page<UsageView>,
}

#[derive(Clone)]
pub struct Usage {
    db: DatabaseConnection,
}

/// `r`'s value, or `None` with its violation noted against `field`.
fn keep<T>(
    errors: &mut Vec<(&'static str, Violation)>,
    field: &'static str,
    r: Result<T, Violation>,
) -> Option<T> {
    r.map_err(|v| errors.push((field, v))).ok()
}

/// An event checked against every rule: the row to store, or what is wrong with it.
fn validate(
    e: &UsageEvent,
    now: DateTime<Utc>,
) -> Result<usage_records::Model, Vec<(&'static str, Violation)>> {
    let mut errors = Vec::new();
    let service = keep(&mut errors, "service", billing::name(&e.service, 64));
    let model = keep(&mut errors, "model", billing::name(&e.model, 128));
    let request_type = keep(
        &mut errors,
        "request_type",
        billing::name(&e.request_type, 64),
    );
    let tokens = keep(&mut errors, "tokens_used", billing::tokens(e.tokens_used));
    let cost = keep(
        &mut errors,
        "cost",
        match (&e.cost, e.cost_micros) {
            (Some(c), None) => Micros::parse(c),
            (None, Some(m)) => Micros::event(m),
            _ => Err(Violation::new(
                "cost_required",
                "give exactly one of cost (a decimal string) and cost_micros",
            )),
        },
    );
    let occurred_at = keep(
        &mut errors,
        "occurred_at",
        e.occurred_at.map_or(Ok(now), billing::instant),
    );
    match (service, model, request_type, tokens, cost, occurred_at) {
        (
            Some(service),
            Some(model),
            Some(request_type),
            Some(tokens_used),
            Some(cost),
            Some(occurred_at),
        ) => Ok(usage_records::Model {
            id: Uuid::now_v7(),
            user_id: e.user_id,
            api_key_id: None,
            service,
            model,
            request_type,
            tokens_used,
            cost_micros: cost.0,
            created_at: now,
            occurred_at: Some(occurred_at),
            idempotency_key: None,
        }),
        _ => Err(errors),
    }
}

/// Whether a stored event is the one `new` describes (a retry), ignoring a defaulted time.
fn same_event(
    stored: &usage_records::Model,
    new: &usage_records::Model,
    sent: &UsageEvent,
) -> bool {
    stored.user_id == new.user_id
        && stored.service == new.service
        && stored.model == new.model
        && stored.request_type == new.request_type
        && stored.tokens_used == new.tokens_used
        && stored.cost_micros == new.cost_micros
        && sent
            .occurred_at
            .is_none_or(|_| stored.occurred_at == new.occurred_at)
}

fn key_reused() -> ServiceError {
    ServiceError::invalid(
        "idempotency_key",
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request",
    )
}

impl Usage {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Store one event; with an idempotency key, a retry answers the event stored first.
    pub async fn record(
        &self,
        key: &ServiceKey,
        event: UsageEvent,
        idempotency_key: Option<&str>,
    ) -> Result<Recorded<UsageView>, ServiceError> {
        let recorded = self
            .record_all(key, std::slice::from_ref(&event), idempotency_key, |_, f| f)
            .await?;
        let id = recorded.value[0].id;
        let row = recorded
            .value
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Internal(format!("usage {id} vanished")))?;
        Ok(Recorded {
            value: UsageView::new(row),
            replayed: recorded.replayed,
        })
    }

    /// Store up to [`MAX_BATCH`] events in one transaction: all or none.
    pub async fn record_batch(
        &self,
        key: &ServiceKey,
        events: Vec<UsageEvent>,
        idempotency_key: Option<&str>,
    ) -> Result<Recorded<BatchRecorded>, ServiceError> {
        if events.is_empty() || events.len() > MAX_BATCH {
            return Err(ServiceError::invalid(
                "events",
                "invalid_length",
                format!("send 1 to {MAX_BATCH} events"),
            ));
        }
        let recorded = self
            .record_all(key, &events, idempotency_key, |i, f| {
                format!("events[{i}].{f}")
            })
            .await?;
        Ok(Recorded {
            value: BatchRecorded {
                recorded: recorded.value.len(),
                ids: recorded.value.iter().map(|r| r.id).collect(),
            },
            replayed: recorded.replayed,
        })
    }

    /// The one write path: validate every event, check the users, insert all in one
    /// transaction, and on a taken idempotency key answer the rows stored first (in order).
    /// `field(i, name)` names event `i`'s field in errors.
    async fn record_all<F: std::fmt::Display>(
        &self,
        key: &ServiceKey,
        events: &[UsageEvent],
        idempotency_key: Option<&str>,
        field: impl Fn(usize, &'static str) -> F,
    ) -> Result<Recorded<Vec<usage_records::Model>>, ServiceError> {
        let idem = idempotency_key
            .map(billing::idempotency_key)
            .transpose()
            .map_err(|v| ServiceError::Validation(vec![FieldError::new("idempotency_key", v)]))?;
        let now = store::now();
        let mut errors = Vec::new();
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            match validate(e, now) {
                Ok(mut row) => {
                    row.api_key_id = Some(key.id);
                    row.idempotency_key = idem.map(|k| match events.len() {
                        1 => k.to_string(),
                        _ => format!("{k}#{i}"),
                    });
                    rows.push(row);
                }
                Err(found) => errors.extend(found.into_iter().map(|(f, v)| FieldError {
                    field: if events.len() == 1 { f } else { "events" },
                    code: v.code,
                    message: if events.len() == 1 {
                        v.message
                    } else {
                        format!("{}: {}", field(i, f), v.message)
                    },
                })),
            }
        }
        ServiceError::check(errors)?;
        let wanted: Vec<Uuid> = rows
            .iter()
            .map(|r| r.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let live = store::usage::live_users(&self.db, &wanted).await?;
        let unknown: Vec<FieldError> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| !live.contains(&r.user_id))
            .map(|(i, r)| FieldError {
                field: if events.len() == 1 {
                    "user_id"
                } else {
                    "events"
                },
                code: "unknown_user",
                message: format!("{}: no such user {}", field(i, "user_id"), r.user_id),
            })
            .take(20)
            .collect();
        ServiceError::check(unknown)?;

        let txn = self.db.begin().await.map_err(StoreError::from)?;
        match store::usage::insert_many(&txn, &rows).await {
            Ok(()) => {
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Recorded {
                    value: rows,
                    replayed: false,
                })
            }
            Err(StoreError::Conflict(_)) if idem.is_some() => {
                txn.rollback().await.map_err(StoreError::from)?;
                let keys: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.idempotency_key.clone())
                    .collect();
                let found = store::usage::by_idempotency_keys(&self.db, key.id, &keys).await?;
                let mut ordered = Vec::with_capacity(rows.len());
                for ((row, sent), k) in rows.iter().zip(events).zip(&keys) {
                    match found.iter().find(|f| f.idempotency_key.as_ref() == Some(k)) {
                        Some(stored) if same_event(stored, row, sent) => {
                            ordered.push(stored.clone())
                        }
                        _ => return Err(key_reused()),
                    }
                }
                Ok(Recorded {
                    value: ordered,
                    replayed: true,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A user's usage over `[since, until)` (all time by default): totals, per service, per
    /// service and model, and a page of the events. 404 for an unknown user.
    pub async fn report(
        &self,
        user_id: Uuid,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        paging: Paging,
    ) -> Result<UsageReport, ServiceError> {
        let since = since.unwrap_or_else(billing::earliest);
        let until = until.unwrap_or_else(billing::latest);
        let (since, until) = billing::period(since, until)
            .map_err(|v| ServiceError::Validation(vec![FieldError::new("until", v)]))?;
        if store::usage::live_users(&self.db, &[user_id])
            .await?
            .is_empty()
        {
            return Err(ServiceError::NotFound);
        }
        let (total, by_service, by_model) =
            store::usage::sums(&self.db, user_id, since, until).await?;
        let (items, count) = store::usage::page(
            &self.db,
            user_id,
            since,
            until,
            paging.offset(),
            paging.per_page,
        )
        .await?;
        Ok(UsageReport {
            user_id,
            since,
            until,
            totals: UsageTotals::new(total, false, false),
            by_service: by_service
                .into_iter()
                .map(|s| UsageTotals::new(s, true, false))
                .collect(),
            by_model: by_model
                .into_iter()
                .map(|s| UsageTotals::new(s, true, true))
                .collect(),
            items: Page::new(
                items.into_iter().map(UsageView::new).collect(),
                paging,
                count,
            ),
        })
    }
}
