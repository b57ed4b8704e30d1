//! Queries on billing records: made once per user and period (a unique index decides between racing closes), listed, and moved between statuses by a conditional update.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::billing_records as rows;
use super::{StoreError, instant};

/// Rows per `INSERT`.
const ROWS_PER_STATEMENT: usize = 500;

/// One user's amount for a period.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amount_micros: i64,
}

/// Insert a record per user for `[start, end)` unless that user already has one for exactly this
/// period; returns the ids of the rows this call made (run it in a transaction).
pub async fn insert_missing<C: ConnectionTrait>(
    db: &C,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    currency: &str,
    status: &str,
    records: &[NewRecord],
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let backend = db.get_database_backend();
    let mut made = Vec::new();
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert
            .into_table(rows::Entity)
            .columns([
                rows::Column::Id,
                rows::Column::UserId,
                rows::Column::PeriodStart,
                rows::Column::PeriodEnd,
                rows::Column::AmountMicros,
                rows::Column::Currency,
                rows::Column::Status,
                rows::Column::CreatedAt,
            ])
            .on_conflict(
                OnConflict::columns([
                    rows::Column::UserId,
                    rows::Column::PeriodStart,
                    rows::Column::PeriodEnd,
                ])
                .do_nothing_on([rows::Column::UserId])
                .to_owned(),
            );
        for r in chunk {
            insert.values_panic([
                r.id.into(),
                r.user_id.into(),
                instant(backend, start).into(),
                instant(backend, end).into(),
                r.amount_micros.into(),
                currency.into(),
                status.into(),
                instant(backend, now).into(),
            ]);
        }
        db.execute(&insert).await?;
        let ids: Vec<Uuid> = rows::Entity::find()
            .select_only()
            .column(rows::Column::Id)
            .filter(rows::Column::Id.is_in(chunk.iter().map(|r| r.id)))
            .into_tuple()
            .all(db)
            .await?;
        made.extend(ids);
    }
    Ok(made)
}

/// Whether any record's period overlaps `[start, end)` without being exactly it.
pub async fn overlapping_exists<C: ConnectionTrait>(
    db: &C,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let backend = db.get_database_backend();
    let (start, end) = (instant(backend, start), instant(backend, end));
    let found = rows::Entity::find()
        .filter(rows::Column::PeriodStart.lt(end.clone()))
        .filter(rows::Column::PeriodEnd.gt(start.clone()))
        .filter(
            Condition::any()
                .add(rows::Column::PeriodStart.ne(start))
                .add(rows::Column::PeriodEnd.ne(end)),
        )
        .count(db)
        .await?;
    Ok(found > 0)
}

/// Which records a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: Option<Uuid>,
    pub status: Option<String>,
    /// Exactly this period.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// One page of records, latest period first, and how many match.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    filter: &Filter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<rows::Model>, u64), StoreError> {
    let backend = db.get_database_backend();
    let mut query = rows::Entity::find();
    if let Some(id) = filter.user_id {
        query = query.filter(rows::Column::UserId.eq(id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(rows::Column::Status.eq(status.as_str()));
    }
    if let Some((start, end)) = filter.period {
        query = query
            .filter(rows::Column::PeriodStart.eq(instant(backend, start)))
            .filter(rows::Column::PeriodEnd.eq(instant(backend, end)));
    }
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(rows::Column::PeriodStart)
        .order_by_asc(rows::Column::UserId)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((items, total))
}

pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<rows::Model>, StoreError> {
    Ok(rows::Entity::find_by_id(id).one(db).await?)
}

/// Move a record from status `from` to `to`; `false` when it was no longer at `from`.
pub async fn set_status<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let res = rows::Entity::update_many()
        .col_expr(rows::Column::Status, Expr::value(to))
        .filter(rows::Column::Id.eq(id))
        .filter(rows::Column::Status.eq(from))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
