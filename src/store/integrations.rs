//! Queries on third-party API keys of users (stored only as envelopes), and the sealed values of every kind that the start-up key check samples.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{integrations, users};

/// A new integration; the key arrives already sealed.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub id: Uuid,
    pub user_id: Uuid,
    pub service: String,
    pub label: Option<String>,
    pub key_ciphertext: String,
    pub key_hint: String,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewIntegration,
) -> Result<integrations::Model, StoreError> {
    let now = crate::store::now();
    Ok(integrations::ActiveModel {
        id: Set(new.id),
        user_id: Set(new.user_id),
        service: Set(new.service),
        label: Set(new.label),
        key_ciphertext: Set(new.key_ciphertext),
        key_hint: Set(new.key_hint),
        status: Set("active".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// A user's integrations, oldest first.
pub async fn for_user(
    db: &DatabaseConnection,
    user_id: Uuid,
) -> Result<Vec<integrations::Model>, StoreError> {
    Ok(integrations::Entity::find()
        .filter(integrations::Column::UserId.eq(user_id))
        .order_by_asc(integrations::Column::CreatedAt)
        .order_by_asc(integrations::Column::Id)
        .all(db)
        .await?)
}

/// One integration of one user.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<integrations::Model>, StoreError> {
    Ok(integrations::Entity::find_by_id(id)
        .filter(integrations::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

/// Delete one integration of one user (the ciphertext goes with it); `false` when there is none.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> Result<bool, StoreError> {
    let res = integrations::Entity::delete_many()
        .filter(integrations::Column::Id.eq(id))
        .filter(integrations::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What a sealed value is: an integration key, or a user's (active or pending) TOTP secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    Integration,
    Totp,
    PendingTotp,
}

/// One sealed value and the row it belongs to.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub kind: SealedKind,
    pub user_id: Uuid,
    /// The row's own id (the integration's; the user's for TOTP secrets).
    pub id: Uuid,
    pub value: String,
}

/// Up to `limit` sealed values of each kind, for the start-up key check.
pub async fn sample_sealed(db: &DatabaseConnection, limit: u64) -> Result<Vec<Sealed>, StoreError> {
    let mut out: Vec<Sealed> = integrations::Entity::find()
        .order_by_desc(integrations::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|r| Sealed {
            kind: SealedKind::Integration,
            user_id: r.user_id,
            id: r.id,
            value: r.key_ciphertext,
        })
        .collect();
    for (kind, column) in [
        (SealedKind::Totp, users::Column::MfaSecret),
        (SealedKind::PendingTotp, users::Column::MfaPendingSecret),
    ] {
        let rows: Vec<(Uuid, Option<String>)> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .column(column)
            .filter(column.is_not_null())
            .order_by_desc(users::Column::UpdatedAt)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows.into_iter().filter_map(|(id, value)| {
            Some(Sealed {
                kind,
                user_id: id,
                id,
                value: value?,
            })
        }));
    }
    Ok(out)
}

/// Where a sealed value of a kind lives: the integrations table, or a column of users.
enum Place {
    Integration,
    User(users::Column),
}

fn place(kind: SealedKind) -> Place {
    match kind {
        SealedKind::Integration => Place::Integration,
        SealedKind::Totp => Place::User(users::Column::MfaSecret),
        SealedKind::PendingTotp => Place::User(users::Column::MfaPendingSecret),
    }
}

/// Up to `limit` values of `kind` not sealed under the key named `key_id`, with ids after
/// `after`, in id order (so a run that stops can carry on, and a value that cannot be moved is
/// passed over rather than met again).
pub async fn sealed_page(
    db: &DatabaseConnection,
    kind: SealedKind,
    key_id: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Sealed>, StoreError> {
    let current = format!("v1:{key_id}:%");
    let Place::User(user_column) = place(kind) else {
        let mut q = integrations::Entity::find()
            .filter(integrations::Column::KeyCiphertext.not_like(current.as_str()))
            .order_by_asc(integrations::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            q = q.filter(integrations::Column::Id.gt(after));
        }
        return Ok(q
            .all(db)
            .await?
            .into_iter()
            .map(|r| Sealed {
                kind,
                user_id: r.user_id,
                id: r.id,
                value: r.key_ciphertext,
            })
            .collect());
    };
    let mut q = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .column(user_column)
        .filter(user_column.is_not_null())
        .filter(user_column.not_like(current.as_str()))
        .order_by_asc(users::Column::Id)
        .limit(limit);
    if let Some(after) = after {
        q = q.filter(users::Column::Id.gt(after));
    }
    let rows: Vec<(Uuid, Option<String>)> = q.into_tuple().all(db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, value)| {
            Some(Sealed {
                kind,
                user_id: id,
                id,
                value: value?,
            })
        })
        .collect())
}

/// Replace a sealed value with `resealed`, only if it is still the value read; `false` when
/// it changed meanwhile (a new key, a re-enrolment, a deletion).
pub async fn reseal(
    db: &DatabaseConnection,
    sealed: &Sealed,
    resealed: &str,
) -> Result<bool, StoreError> {
    let res = match place(sealed.kind) {
        Place::Integration => {
            let column = integrations::Column::KeyCiphertext;
            integrations::Entity::update_many()
                .col_expr(column, Expr::value(resealed))
                .filter(integrations::Column::Id.eq(sealed.id))
                .filter(column.eq(sealed.value.as_str()))
                .exec(db)
                .await?
        }
        Place::User(user_column) => {
            users::Entity::update_many()
                .col_expr(user_column, Expr::value(resealed))
                .filter(users::Column::Id.eq(sealed.id))
                .filter(user_column.eq(sealed.value.as_str()))
                .exec(db)
                .await?
        }
    };
    Ok(res.rows_affected == 1)
}
