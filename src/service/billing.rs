//! Billing: closing a period turns its usage into one `pending` record per user (exactly once, however many closes race), users read their records, and an admin marks a record `paid` or `void`; every change is audited in its transaction.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{FieldError, ServiceError};
use super::login::Principal;
use super::paging::Paging;
use super::views::Page;
use crate::domain::billing::{self, BillingStatus, Micros};
use crate::domain::client::ClientInfo;
use crate::store::audit::{self, AuditEntry};
use crate::store::billing::{Filter, NewRecord};
use crate::store::entities::billing_records;
use crate::store::{self, StoreError};

/// The currency every amount is in.
pub const CURRENCY: &str = "USD";

/// A billing record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillingView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Exact decimal, six places.
    #[schema(example = "12.345678")]
    pub amount: String,
    pub amount_micros: i64,
    #[schema(example = "USD")]
    pub currency: String,
    /// `pending`, `paid` or `void`.
    #[schema(example = "pending")]
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl BillingView {
    fn new(r: billing_records::Model) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            period_start: r.period_start,
            period_end: r.period_end,
            amount: Micros(r.amount_micros).to_decimal(),
            amount_micros: r.amount_micros,
            currency: r.currency,
            status: r.status,
            created_at: r.created_at,
        }
    }
}

/// What closing a period did: how many records this call made, and the period's records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClosedPeriod {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Records made by this call (0 when the period was closed before).
    pub created: usize,
    /// The period's records (first page), one per user with usage in it.
    pub records: Page<BillingView>,
}

/// What an admin listing filters by.
#[derive(Debug, Clone, Default)]
pub struct BillingQuery {
    pub user_id: Option<Uuid>,
    pub status: Option<String>,
}

#[derive(Clone)]
pub struct Billing {
    db: DatabaseConnection,
}

impl Billing {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Make a `pending` record for every user with usage in `[start, end)` that has none for
    /// this period yet. Idempotent: a second close (or one racing on another instance) makes
    /// nothing new. A period that overlaps a closed one without being it is refused (409), so
    /// no usage is billed twice.
    pub async fn close_period(
        &self,
        actor: &Principal,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        client: &ClientInfo,
    ) -> Result<ClosedPeriod, ServiceError> {
        let (start, end) = billing::period(start, end)
            .map_err(|v| ServiceError::Validation(vec![FieldError::new("period_end", v)]))?;
        if store::billing::overlapping_exists(&self.db, start, end).await? {
            return Err(ServiceError::Conflict {
                code: "period_overlaps",
                detail:
                    "another closed period overlaps this one; close periods that do not overlap"
                        .into(),
            });
        }
        let now = store::now();
        // Summed before the transaction, whose first statement is then a write: SQLite cannot
        // turn a read transaction into a write one while another close commits.
        let records: Vec<NewRecord> = store::usage::cost_per_user(&self.db, start, end)
            .await?
            .into_iter()
            .map(|(user_id, amount_micros)| NewRecord {
                id: Uuid::now_v7(),
                user_id,
                amount_micros,
            })
            .collect();
        let pending = BillingStatus::Pending.name();
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let made =
            store::billing::insert_missing(&txn, start, end, CURRENCY, pending, &records, now)
                .await?;
        for r in records.iter().filter(|r| made.contains(&r.id)) {
            audit::record(
                &txn,
                client.stamp(AuditEntry {
                    event: "billing_record_created",
                    user_id: Some(r.user_id),
                    actor_id: Some(actor.user_id),
                    detail: serde_json::json!({
                        "billing_record_id": r.id,
                        "period_start": start,
                        "period_end": end,
                        "amount_micros": r.amount_micros,
                        "status": pending,
                    }),
                    ..Default::default()
                }),
            )
            .await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        let paging = Paging::new(None, Some(Paging::MAX_PER_PAGE))?;
        let filter = Filter {
            period: Some((start, end)),
            ..Default::default()
        };
        Ok(ClosedPeriod {
            period_start: start,
            period_end: end,
            created: made.len(),
            records: self.page(&filter, paging).await?,
        })
    }

    async fn page(
        &self,
        filter: &Filter,
        paging: Paging,
    ) -> Result<Page<BillingView>, ServiceError> {
        let (rows, total) =
            store::billing::page(&self.db, filter, paging.offset(), paging.per_page).await?;
        Ok(Page::new(
            rows.into_iter().map(BillingView::new).collect(),
            paging,
            total,
        ))
    }

    /// The caller's records, latest period first.
    pub async fn mine(
        &self,
        who: &Principal,
        paging: Paging,
    ) -> Result<Page<BillingView>, ServiceError> {
        let filter = Filter {
            user_id: Some(who.user_id),
            ..Default::default()
        };
        self.page(&filter, paging).await
    }

    /// Every record, filtered (admin).
    pub async fn list(
        &self,
        query: BillingQuery,
        paging: Paging,
    ) -> Result<Page<BillingView>, ServiceError> {
        if let Some(s) = &query.status
            && BillingStatus::parse(s).is_none()
        {
            return Err(ServiceError::invalid(
                "status",
                "unknown_status",
                "must be pending, paid or void",
            ));
        }
        let filter = Filter {
            user_id: query.user_id,
            status: query.status,
            period: None,
        };
        self.page(&filter, paging).await
    }

    /// Mark a record `paid` or `void` (pending → paid or void, paid → void). Setting the status
    /// it already has changes nothing and answers the record; any other move is 409.
    pub async fn set_status(
        &self,
        actor: &Principal,
        id: Uuid,
        status: &str,
        client: &ClientInfo,
    ) -> Result<BillingView, ServiceError> {
        let to = BillingStatus::parse(status)
            .filter(|s| *s != BillingStatus::Pending)
            .ok_or_else(|| {
                ServiceError::invalid("status", "unknown_status", "must be paid or void")
            })?;
        let row = store::billing::find(&self.db, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let from = BillingStatus::parse(&row.status);
        if from == Some(to) {
            return Ok(BillingView::new(row));
        }
        let refused = || ServiceError::Conflict {
            code: "invalid_status_change",
            detail: format!("a {} record cannot become {}", row.status, to.name()),
        };
        let from = from.filter(|f| f.may_become(to)).ok_or_else(refused)?;
        // The conditional update comes first: it decides between racing changes, and SQLite
        // takes its write lock at the start of the transaction.
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::billing::set_status(&txn, id, from.name(), to.name()).await? {
            return Err(ServiceError::Conflict {
                code: "invalid_status_change",
                detail: "the record changed meanwhile; read it again".into(),
            });
        }
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "billing_record_status_changed",
                user_id: Some(row.user_id),
                actor_id: Some(actor.user_id),
                detail: serde_json::json!({
                    "billing_record_id": id,
                    "from": row.status,
                    "to": to.name(),
                }),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(BillingView {
            status: to.name().to_string(),
            ..BillingView::new(row)
        })
    }
}
