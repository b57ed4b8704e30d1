//! Operator-level flows shared by the CLI, start-up and the admin routes: bootstrap a super_admin, list and unlock users, seed and list roles, clean up sessions, read the audit log.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::error::{FieldError, ServiceError};
use super::login::Principal;
use super::new_account::{AccountSpec, create_account};
use super::paging::Paging;
use super::views::{AuditView, Page, RoleList, RoleView};
use crate::crypto::password::PasswordHasher;
use crate::domain::client::ClientInfo;
use crate::domain::email::Email;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::profile::search_text;
use crate::domain::roles::Role;
use crate::store;
use crate::store::audit::{self, AuditEntry};
use crate::store::roles::RoleDef;

/// What `ensure_super_admin` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    Promoted,
    AlreadySuperAdmin,
}

/// Which audit rows `GET /audit` lists.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// The user the event concerns.
    pub user_id: Option<Uuid>,
    /// Who acted.
    pub actor_id: Option<Uuid>,
    pub event: Option<String>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
}

/// A user as the admin CLI lists it.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    pub locked: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Accounts {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
}

fn parse_email(raw: &str) -> Result<Email, ServiceError> {
    Email::parse(raw).map_err(|e| ServiceError::invalid("email", e.code(), e.to_string()))
}

impl Accounts {
    pub fn new(db: DatabaseConnection, hasher: PasswordHasher, policy: PasswordPolicy) -> Self {
        Self { db, hasher, policy }
    }

    /// Whether an account (deleted ones included) holds this email.
    pub async fn exists(&self, email: &str) -> Result<bool, ServiceError> {
        let email = parse_email(email)?;
        Ok(store::users::find_by_email(&self.db, email.key())
            .await?
            .is_some())
    }

    /// Make `email` a super_admin: promote the account if it exists (its password untouched),
    /// otherwise create it with `password`, which must meet the policy.
    pub async fn ensure_super_admin(
        &self,
        email: &str,
        password: Option<&str>,
    ) -> Result<AdminOutcome, ServiceError> {
        let email = parse_email(email)?;
        if let Some(outcome) = self.promote(&email).await? {
            return Ok(outcome);
        }
        let password = password.ok_or_else(|| {
            ServiceError::invalid(
                "password",
                "required",
                "a password is needed to create the account",
            )
        })?;
        ServiceError::check(FieldError::all(
            "password",
            self.policy.check(password, Some(email.as_str())),
        ))?;
        let spec = AccountSpec {
            roles: vec![Role::SuperAdmin.name().to_string()],
            email_verified: true,
            ..Default::default()
        };
        let audit = AuditEntry {
            event: "admin_created",
            detail: serde_json::json!({"via": "operator"}),
            ..Default::default()
        };
        match create_account(&self.db, &self.hasher, &email, Some(password), spec, audit).await {
            Ok(_) => Ok(AdminOutcome::Created),
            // Someone created it meanwhile (two instances starting together): promote that one.
            Err(ServiceError::Conflict { .. }) => self
                .promote(&email)
                .await?
                .ok_or_else(|| ServiceError::Internal("account vanished during creation".into())),
            Err(e) => Err(e),
        }
    }

    async fn promote(&self, email: &Email) -> Result<Option<AdminOutcome>, ServiceError> {
        let Some(user) = store::users::find_by_email(&self.db, email.key()).await? else {
            return Ok(None);
        };
        if user.deleted_at.is_some() {
            return Err(ServiceError::Conflict {
                code: "account_deleted",
                detail: format!("the account {} is deleted", email),
            });
        }
        let granted =
            store::users::grant_role(&self.db, user.id, Role::SuperAdmin.name(), None).await?;
        if !granted {
            return Ok(Some(AdminOutcome::AlreadySuperAdmin));
        }
        audit::record(
            &self.db,
            AuditEntry {
                event: "role_granted",
                user_id: Some(user.id),
                detail: serde_json::json!({"role": Role::SuperAdmin.name(), "via": "operator"}),
                ..Default::default()
            },
        )
        .await?;
        Ok(Some(AdminOutcome::Promoted))
    }

    /// Users in creation order with their roles.
    pub async fn list(&self, limit: u64) -> Result<Vec<UserSummary>, ServiceError> {
        let users = store::users::list(&self.db, limit).await?;
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let mut roles = store::users::roles_of(&self.db, &ids).await?;
        let now = crate::store::now();
        Ok(users
            .into_iter()
            .map(|u| {
                let mut r = roles.remove(&u.id).unwrap_or_default();
                super::views::sort_roles(&mut r);
                UserSummary {
                    id: u.id,
                    email: u.email,
                    name: u.name,
                    roles: r,
                    active: u.active,
                    locked: u.locked_until.is_some_and(|t| t > now),
                    created_at: u.created_at,
                    last_login_at: u.last_login_at,
                }
            })
            .collect())
    }

    /// Clear the lockout of the account with this email.
    pub async fn unlock(&self, email: &str) -> Result<(), ServiceError> {
        let email = parse_email(email)?;
        let user = store::users::find_by_email(&self.db, email.key())
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or(ServiceError::NotFound)?;
        store::users::unlock(&self.db, user.id).await?;
        audit::record(
            &self.db,
            AuditEntry {
                event: "account_unlocked",
                user_id: Some(user.id),
                detail: serde_json::json!({"via": "operator"}),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Create or update the five built-in roles. Returns (created, updated).
    pub async fn seed_roles(&self) -> Result<(usize, usize), ServiceError> {
        let defs: Vec<RoleDef> = Role::ALL
            .iter()
            .map(|r| RoleDef {
                name: r.name(),
                rank: r.rank(),
                description: r.description(),
                permissions: r.permissions(),
            })
            .collect();
        Ok(store::roles::upsert(&self.db, &defs).await?)
    }

    /// Delete expired and revoked sessions, spent one-time tokens, expired OAuth flows and passkey ceremonies, in
    /// batches; audited with the admin who asked (none from the CLI). Returns how many rows went.
    pub async fn cleanup_sessions(
        &self,
        by: Option<(&Principal, &ClientInfo)>,
    ) -> Result<u64, ServiceError> {
        let day_ago = store::now() - chrono::Duration::days(1);
        let deleted = store::sessions::cleanup(&self.db).await?
            + store::throttles::sweep(&self.db, day_ago).await?
            + store::oauth::delete_expired_states(&self.db, store::now()).await?
            + store::passkeys::purge_ceremonies(&self.db, store::now()).await?;
        let entry = AuditEntry {
            event: "sessions_cleaned",
            actor_id: by.map(|(who, _)| who.user_id),
            detail: serde_json::json!({"deleted": deleted, "via": if by.is_some() { "api" } else { "cli" }}),
            ..Default::default()
        };
        let entry = match by {
            Some((_, client)) => client.stamp(entry),
            None => entry,
        };
        audit::record(&self.db, entry).await?;
        Ok(deleted)
    }

    /// The role catalogue, highest rank first.
    pub async fn roles(&self) -> Result<RoleList, ServiceError> {
        let roles = store::roles::all(&self.db).await?;
        Ok(RoleList {
            roles: roles.into_iter().map(RoleView::new).collect(),
        })
    }

    /// One page of the audit log, newest first.
    pub async fn audit_log(
        &self,
        query: AuditQuery,
        paging: Paging,
    ) -> Result<Page<AuditView>, ServiceError> {
        if let Some(Err(v)) = query.event.as_deref().map(search_text) {
            return Err(ServiceError::Validation(vec![FieldError::new("event", v)]));
        }
        let filter = store::audit::AuditFilter {
            user_id: query.user_id,
            actor_id: query.actor_id,
            event: query.event,
            since: query.since,
            until: query.until,
        };
        let (rows, total) =
            store::audit::page(&self.db, &filter, paging.offset(), paging.per_page).await?;
        Ok(Page::new(
            rows.into_iter().map(AuditView::new).collect(),
            paging,
            total,
        ))
    }
}
