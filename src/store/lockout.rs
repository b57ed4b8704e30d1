//! The lockout counter's three statements, written once for every table that carries one (`users` for accounts, `login_throttles` for emails without an account and for trusted devices).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;

/// The two columns of a counter and the condition that picks its row.
pub(crate) struct Counter<E: EntityTrait> {
    pub failed: E::Column,
    pub locked_until: E::Column,
    pub row: Condition,
}

impl<E: EntityTrait> Counter<E> {
    /// Reserve one attempt before the secret is checked: succeeds only while the row is under
    /// `max` failures and not locked (an expired lock starts a fresh count). At most `max`
    /// checks can therefore ever be in flight.
    pub async fn reserve<C: ConnectionTrait>(
        &self,
        db: &C,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let lock_expired = Expr::col(self.locked_until)
            .is_not_null()
            .and(Expr::col(self.locked_until).lte(now));
        let res = E::update_many()
            .col_expr(
                self.failed,
                Expr::case(lock_expired.clone(), Expr::value(1))
                    .finally(Expr::col(self.failed).add(1))
                    .into(),
            )
            .col_expr(
                self.locked_until,
                Expr::case(lock_expired, Expr::value(Option::<DateTime<Utc>>::None))
                    .finally(Expr::col(self.locked_until))
                    .into(),
            )
            .filter(self.row.clone())
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(self.locked_until.is_null())
                            .add(self.failed.lt(max as i32)),
                    )
                    .add(self.locked_until.lte(now)),
            )
            .exec(db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Give back a reserved attempt that was never judged (the hashing pool was full, or the
    /// right secret met an account that may not sign in).
    pub async fn release<C: ConnectionTrait>(&self, db: &C) -> Result<(), StoreError> {
        E::update_many()
            .col_expr(self.failed, Expr::col(self.failed).sub(1))
            .filter(self.row.clone())
            .filter(self.failed.gt(0))
            .exec(db)
            .await?;
        Ok(())
    }

    /// After a failed check: lock until `until` if the failures reached `max`. `true` when this
    /// call locked it.
    pub async fn lock_if_exhausted<C: ConnectionTrait>(
        &self,
        db: &C,
        max: u32,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = E::update_many()
            .col_expr(self.locked_until, Expr::value(until))
            .filter(self.row.clone())
            .filter(self.failed.gte(max as i32))
            .filter(self.locked_until.is_null())
            .exec(db)
            .await?;
        Ok(res.rows_affected == 1)
    }
}
