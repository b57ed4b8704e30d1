//! The users admin API: list, create, read, update, disable, delete and purge accounts and change their roles, under the RBAC rules of `domain::rbac`, every change audited.

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use super::audit::{Revocation, revoke_sessions};
use super::caller::Caller;
use super::error::{FieldError, ServiceError};
use super::login::Principal;
use super::new_account::{AccountSpec, Credentials, create_account};
use super::paging::Paging;
use super::principals::Principals;
use super::views::{Page, UserView};
use crate::bus::Eviction;
use crate::crypto::password::PasswordHasher;
use crate::domain::client::ClientInfo;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::permissions::Permission;
use crate::domain::profile::{DisplayName, Metadata, search_text};
use crate::domain::rbac::{self, Decision};
use crate::domain::roles::Role;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::users as user_rows;
use crate::store::users::{ListFilter, ProfileChange};
use crate::store::{self, StoreError};

/// Which accounts `GET /users` lists.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Only holders of this role.
    pub role: Option<String>,
    /// Case-insensitive text in email or name.
    pub q: Option<String>,
    pub active: Option<bool>,
}

/// What `POST /users` takes.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub email_verified: bool,
    pub metadata: Option<serde_json::Value>,
}

/// What `PATCH /users/{id}` takes; `None` leaves a field alone, `Some(None)` clears the name.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
    pub active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

#[derive(Clone)]
pub struct Users {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    principals: Principals,
}

/// A rule's decision as the API answers it.
fn enforce(decision: Decision) -> Result<(), ServiceError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Hide => Err(ServiceError::NotFound),
        Decision::Forbid(code) => Err(ServiceError::Forbidden {
            code,
            detail: match code {
                rbac::NOT_GRANTABLE => "you may only grant or remove roles below your own",
                rbac::LOWERS_OWN_ROLE => "you cannot lower your own role",
                _ => "this user's role is not below yours",
            }
            .into(),
        }),
    }
}

fn last_super_admin() -> ServiceError {
    ServiceError::Conflict {
        code: "last_super_admin",
        detail: "this is the last active super_admin; promote another one first".into(),
    }
}

/// Role names as built-in roles, deduplicated and highest first; unknown names are a 422.
fn parse_roles(names: &[String]) -> Result<Vec<Role>, ServiceError> {
    let mut roles = Vec::new();
    for name in names {
        let role = Role::parse(name.trim()).ok_or_else(|| {
            ServiceError::invalid(
                "roles",
                "unknown_role",
                format!("{name:?} is not a role; see GET /roles"),
            )
        })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(ServiceError::invalid(
            "roles",
            "empty",
            "give at least one role",
        ));
    }
    roles.sort_by(|a, b| b.cmp(a));
    Ok(roles)
}

/// The audit row of an admin action by `actor` on user `target`.
fn admin_action(
    client: &ClientInfo,
    actor: &Principal,
    target: Uuid,
    event: &'static str,
    detail: serde_json::Value,
) -> AuditEntry {
    client.stamp(AuditEntry {
        event,
        user_id: Some(target),
        actor_id: Some(actor.user_id),
        detail,
        ..Default::default()
    })
}

fn names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.name().to_string()).collect()
}

/// The metadata of a request, parsed (`None` when absent); a broken rule joins `errors`.
fn parse_metadata(
    metadata: Option<serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Metadata> {
    Metadata::parse(metadata?)
        .map_err(|v| errors.push(FieldError::new("metadata", v)))
        .ok()
}

impl Users {
    pub fn new(
        db: DatabaseConnection,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        principals: Principals,
    ) -> Self {
        Self {
            db,
            hasher,
            policy,
            principals,
        }
    }

    /// A live (not deleted) account with its built-in roles.
    async fn target(&self, id: Uuid) -> Result<(user_rows::Model, Vec<Role>), ServiceError> {
        let (user, roles) = store::users::find_with_roles(&self.db, id)
            .await?
            .filter(|(u, _)| u.deleted_at.is_none())
            .ok_or(ServiceError::NotFound)?;
        let roles = roles.iter().filter_map(|r| Role::parse(r)).collect();
        Ok((user, roles))
    }

    async fn view(&self, id: Uuid) -> Result<UserView, ServiceError> {
        let (user, roles) = store::users::find_with_roles(&self.db, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(UserView::new(user, roles))
    }

    /// Refuse a change that would leave no active super_admin. Must be the first statement of `txn`.
    async fn keep_a_super_admin(
        &self,
        txn: &DatabaseTransaction,
        target: Uuid,
    ) -> Result<(), ServiceError> {
        let live = store::users::lock_super_admins(txn).await?;
        if live.iter().all(|id| *id == target) {
            return Err(last_super_admin());
        }
        Ok(())
    }

    async fn commit(txn: DatabaseTransaction) -> Result<(), ServiceError> {
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// One page of live accounts, oldest first, filtered by role, text and `active`.
    pub async fn list(
        &self,
        query: UserQuery,
        paging: Paging,
    ) -> Result<Page<UserView>, ServiceError> {
        let mut errors = Vec::new();
        for (field, text) in [("q", &query.q), ("role", &query.role)] {
            if let Some(Err(v)) = text.as_deref().map(search_text) {
                errors.push(FieldError::new(field, v));
            }
        }
        ServiceError::check(errors)?;
        if let Some(role) = &query.role {
            parse_roles(std::slice::from_ref(role))?;
        }
        let filter = ListFilter {
            role: query.role,
            q: query.q,
            active: query.active,
        };
        let (rows, total) =
            store::users::page(&self.db, &filter, paging.offset(), paging.per_page).await?;
        let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
        let mut roles = store::users::roles_of(&self.db, &ids).await?;
        let items = rows
            .into_iter()
            .map(|u| {
                let r = roles.remove(&u.id).unwrap_or_default();
                UserView::new(u, r)
            })
            .collect();
        Ok(Page::new(items, paging, total))
    }

    /// Create an account for someone else, with roles the actor may grant (default `user`).
    pub async fn create(
        &self,
        actor: &Principal,
        new: NewUser,
        client: &ClientInfo,
    ) -> Result<UserView, ServiceError> {
        let Credentials { email, name } =
            Credentials::parse(&self.policy, &new.email, &new.password, new.name.as_deref())?;
        let mut errors = Vec::new();
        let metadata = parse_metadata(new.metadata, &mut errors);
        ServiceError::check(errors)?;
        let roles = match &new.roles {
            Some(names) => parse_roles(names)?,
            None => vec![Role::User],
        };
        enforce(rbac::create_with(actor.highest_role(), &roles))?;
        let spec = AccountSpec {
            name,
            roles: names(&roles),
            email_verified: new.email_verified,
            metadata,
            self_service: false,
            identity: None,
        };
        let audit = client.stamp(AuditEntry {
            event: "user_created",
            actor_id: Some(actor.user_id),
            detail: serde_json::json!({"roles": names(&roles)}),
            ..Default::default()
        });
        let user = create_account(
            &self.db,
            &self.hasher,
            &email,
            Some(&new.password),
            spec,
            audit,
        )
        .await?;
        self.view(user.id).await
    }

    /// One account: oneself, anyone for moderator and up, anyone for a key with `users:read`.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<UserView, ServiceError> {
        match caller {
            Caller::User(who) => enforce(rbac::read(who.highest_role(), who.user_id == id))?,
            Caller::Service(_) if !caller.allows(Permission::UsersRead) => {
                return Err(ServiceError::missing_permission(Permission::UsersRead));
            }
            Caller::Service(_) => {}
        }
        let (user, roles) = self.target(id).await?;
        Ok(UserView::new(user, names(&roles)))
    }

    /// Change name and metadata (oneself or a manager), `active` and roles (a manager, within
    /// what it may grant). Disabling revokes every session at once. One transaction.
    pub async fn update(
        &self,
        actor: &Principal,
        id: Uuid,
        patch: UserPatch,
        client: &ClientInfo,
    ) -> Result<UserView, ServiceError> {
        let is_self = actor.user_id == id;
        let highest = actor.highest_role();
        let (user, current) = self.target(id).await?;
        let target = current.iter().copied().max();
        enforce(if patch.active.is_some() {
            rbac::manage(highest, target, is_self)
        } else {
            rbac::update_profile(highest, target, is_self)
        })?;
        let new_roles = patch.roles.as_deref().map(parse_roles).transpose()?;
        if let Some(new) = &new_roles {
            enforce(rbac::change_roles(highest, &current, new, is_self))?;
        }
        let mut errors = Vec::new();
        let name = patch.name.map(|n| {
            DisplayName::parse(n.as_deref())
                .map_err(|v| errors.push(FieldError::new("name", v)))
                .ok()
                .flatten()
        });
        let metadata = parse_metadata(patch.metadata, &mut errors);
        ServiceError::check(errors)?;
        let disabling = patch.active == Some(false) && user.active;
        let enabling = patch.active == Some(true) && !user.active;
        let drops_super_admin = current.contains(&Role::SuperAdmin)
            && (disabling
                || new_roles
                    .as_ref()
                    .is_some_and(|n| !n.contains(&Role::SuperAdmin)));
        let mut fields: Vec<&str> = Vec::new();
        if name.is_some() {
            fields.push("name");
        }
        if metadata.is_some() {
            fields.push("metadata");
        }
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if drops_super_admin {
            self.keep_a_super_admin(&txn, id).await?;
        }
        let change = ProfileChange {
            name: name.map(|n| n.map(DisplayName::into_string)),
            metadata: metadata.map(Metadata::into_value),
            active: patch.active,
        };
        if !store::users::update_profile(&txn, id, change).await? {
            return Err(ServiceError::NotFound);
        }
        let mut revoked = 0;
        if disabling {
            // Recorded below, in the `user_disabled` row with the other changes.
            revoked = revoke_sessions(&txn, Revocation::all(id, "user_disabled"), |_| None).await?;
        }
        let stamp = |event, detail| admin_action(client, actor, id, event, detail);
        if let Some(new) = &new_roles {
            store::users::replace_roles(&txn, id, &names(new), Some(actor.user_id)).await?;
            let detail = serde_json::json!({"from": names(&current), "to": names(new)});
            audit::record(&txn, stamp("roles_changed", detail)).await?;
        }
        if disabling || enabling || !fields.is_empty() {
            let event = match (disabling, enabling) {
                (true, _) => "user_disabled",
                (_, true) => "user_enabled",
                _ => "user_updated",
            };
            let detail = serde_json::json!({"fields": fields, "sessions_revoked": revoked});
            audit::record(&txn, stamp(event, detail)).await?;
        }
        Self::commit(txn).await?;
        let eviction = if disabling {
            Eviction::UserSessions(id)
        } else {
            Eviction::User(id)
        };
        self.principals.evict(eviction).await;
        self.view(id).await
    }

    /// Soft-delete an account: it can no longer log in, its sessions die at once, and its email
    /// stays taken. With `purge` (admin and up), remove the row for good, freeing the email.
    pub async fn delete(
        &self,
        actor: &Principal,
        id: Uuid,
        purge: bool,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let is_self = actor.user_id == id;
        let (user, roles) = store::users::find_with_roles(&self.db, id)
            .await?
            .filter(|(u, _)| purge || u.deleted_at.is_none())
            .ok_or(ServiceError::NotFound)?;
        let roles: Vec<Role> = roles.iter().filter_map(|r| Role::parse(r)).collect();
        enforce(rbac::manage(
            actor.highest_role(),
            roles.iter().copied().max(),
            is_self,
        ))?;
        if purge && actor.highest_role() < Some(Role::Admin) {
            return Err(ServiceError::Forbidden {
                code: "insufficient_role",
                detail: "purging an account needs admin or higher".into(),
            });
        }
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if roles.contains(&Role::SuperAdmin) && user.deleted_at.is_none() && user.active {
            self.keep_a_super_admin(&txn, id).await?;
        }
        if purge {
            if !store::users::purge(&txn, id).await? {
                return Err(ServiceError::NotFound);
            }
            let detail = serde_json::json!({"email": user.email});
            audit::record(&txn, admin_action(client, actor, id, "user_purged", detail)).await?;
        } else {
            if !store::users::soft_delete(&txn, id, store::now()).await? {
                return Err(ServiceError::NotFound);
            }
            revoke_sessions(&txn, Revocation::all(id, "user_deleted"), |revoked| {
                let detail = serde_json::json!({"sessions_revoked": revoked});
                Some(admin_action(client, actor, id, "user_deleted", detail))
            })
            .await?;
        }
        Self::commit(txn).await?;
        self.principals.evict(Eviction::UserSessions(id)).await;
        Ok(())
    }

    /// Replace an account's roles. Takes effect on the account's next call (roles are read per call).
    pub async fn set_roles(
        &self,
        actor: &Principal,
        id: Uuid,
        roles: Vec<String>,
        client: &ClientInfo,
    ) -> Result<UserView, ServiceError> {
        let patch = UserPatch {
            roles: Some(roles),
            ..Default::default()
        };
        self.update(actor, id, patch, client).await
    }

    /// Clear a live account's failed logins and lock.
    pub async fn unlock(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.target(id).await?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        store::users::unlock(&txn, id).await?;
        audit::record(
            &txn,
            admin_action(client, actor, id, "user_unlocked", serde_json::Value::Null),
        )
        .await?;
        Self::commit(txn).await
    }
}
