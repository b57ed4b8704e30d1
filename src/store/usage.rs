//! Queries on usage records: many rows in one statement (instants bound through `store::instant`), found again by idempotency key, summed exactly in SQL and paged.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::{usage_records as rows, users};
use super::{StoreError, instant};

/// Rows per `INSERT` (11 parameters each: far inside every backend's limit).
const ROWS_PER_STATEMENT: usize = 500;

/// Insert every event (run it inside a transaction for all or nothing). A taken idempotency
/// key is a `StoreError::Conflict`.
pub async fn insert_many<C: ConnectionTrait>(
    db: &C,
    events: &[rows::Model],
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert.into_table(rows::Entity).columns([
            rows::Column::Id,
            rows::Column::UserId,
            rows::Column::ApiKeyId,
            rows::Column::Service,
            rows::Column::Model,
            rows::Column::RequestType,
            rows::Column::TokensUsed,
            rows::Column::CostMicros,
            rows::Column::CreatedAt,
            rows::Column::OccurredAt,
            rows::Column::IdempotencyKey,
        ]);
        for e in chunk {
            insert.values_panic([
                e.id.into(),
                e.user_id.into(),
                e.api_key_id.into(),
                e.service.clone().into(),
                e.model.clone().into(),
                e.request_type.clone().into(),
                e.tokens_used.into(),
                e.cost_micros.into(),
                instant(backend, e.created_at).into(),
                instant(backend, e.occurred_at.unwrap_or(e.created_at)).into(),
                e.idempotency_key.clone().into(),
            ]);
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// The events an API key stored under these idempotency keys.
pub async fn by_idempotency_keys<C: ConnectionTrait>(
    db: &C,
    api_key_id: Uuid,
    keys: &[String],
) -> Result<Vec<rows::Model>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        found.extend(
            rows::Entity::find()
                .filter(rows::Column::ApiKeyId.eq(api_key_id))
                .filter(rows::Column::IdempotencyKey.is_in(chunk.iter().cloned()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Which of these users exist and are not deleted.
pub async fn live_users<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, StoreError> {
    let mut live = HashSet::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let found: Vec<Uuid> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Id.is_in(chunk.iter().copied()))
            .filter(users::Column::DeletedAt.is_null())
            .into_tuple()
            .all(db)
            .await?;
        live.extend(found);
    }
    Ok(live)
}

/// `SUM(column)` as a 64-bit integer on every backend (PostgreSQL sums `bigint` to `numeric`,
/// MySQL to `DECIMAL`), 0 for no rows.
fn sum(backend: DbBackend, column: &str) -> SimpleExpr {
    let integer = if backend == DbBackend::MySql {
        "SIGNED"
    } else {
        "BIGINT"
    };
    Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS {integer})"))
}

/// Rows of `user_id` (all users when `None`) that occurred in `[since, until)`.
fn within(
    backend: DbBackend,
    user_id: Option<Uuid>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Condition {
    let mut c = Condition::all()
        .add(rows::Column::OccurredAt.gte(instant(backend, since)))
        .add(rows::Column::OccurredAt.lt(instant(backend, until)));
    if let Some(id) = user_id {
        c = c.add(rows::Column::UserId.eq(id));
    }
    c
}

/// Requests, tokens and cost of one group (or of everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub service: String,
    pub model: String,
    pub requests: i64,
    pub tokens_used: i64,
    pub cost_micros: i64,
}

/// A user's sums over `[since, until)`: the total, per service, and per service and model.
pub async fn sums<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Sums, Vec<Sums>, Vec<Sums>), StoreError> {
    let backend = db.get_database_backend();
    // Grouped by service and by model as `by` says; a group left out reads as "".
    let grouped = |by: [bool; 2]| {
        let mut q =
            rows::Entity::find()
                .select_only()
                .filter(within(backend, Some(user_id), since, until));
        for (column, grouped) in [rows::Column::Service, rows::Column::Model]
            .into_iter()
            .zip(by)
        {
            if grouped {
                q = q.column(column).group_by(column).order_by_asc(column);
            } else {
                q = q.expr(Expr::val(""));
            }
        }
        q.expr(Expr::cust("COUNT(*)"))
            .expr(sum(backend, "tokens_used"))
            .expr(sum(backend, "cost_micros"))
            .into_tuple::<(String, String, i64, i64, i64)>()
    };
    let as_sums = |all: Vec<(String, String, i64, i64, i64)>| {
        all.into_iter()
            .map(
                |(service, model, requests, tokens_used, cost_micros)| Sums {
                    service,
                    model,
                    requests,
                    tokens_used,
                    cost_micros,
                },
            )
            .collect::<Vec<_>>()
    };
    let total = as_sums(grouped([false, false]).all(db).await?)
        .pop()
        .unwrap_or_default();
    let by_service = as_sums(grouped([true, false]).all(db).await?);
    let by_model = as_sums(grouped([true, true]).all(db).await?);
    Ok((total, by_service, by_model))
}

/// One page of a user's events in `[since, until)`, latest first, and how many there are.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<rows::Model>, u64), StoreError> {
    let backend = db.get_database_backend();
    let query = rows::Entity::find().filter(within(backend, Some(user_id), since, until));
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(rows::Column::OccurredAt)
        .order_by_desc(rows::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((items, total))
}

/// Every user's cost over `[start, end)`, by user id.
pub async fn cost_per_user<C: ConnectionTrait>(
    db: &C,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let backend = db.get_database_backend();
    Ok(rows::Entity::find()
        .select_only()
        .column(rows::Column::UserId)
        .expr(sum(backend, "cost_micros"))
        .filter(within(backend, None, start, end))
        .group_by(rows::Column::UserId)
        .order_by_asc(rows::Column::UserId)
        .into_tuple()
        .all(db)
        .await?)
}
