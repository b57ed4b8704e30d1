//! The one way an account is made (register, `POST /users`, the admin CLI, sign-up through an outside provider): parse what was sent, check the email is free, hash, and insert the account, its roles, metadata, identity and audit row in one transaction.

use sea_orm::{DatabaseConnection, TransactionTrait};

use super::error::{FieldError, ServiceError};
use crate::crypto::password::PasswordHasher;
use crate::domain::email::Email;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::profile::{DisplayName, Metadata};
use crate::store::audit::AuditEntry;
use crate::store::entities::users as user_rows;
use crate::store::{self, StoreError};

/// What every new account needs, checked: an email, a password the policy accepts, a name.
#[derive(Debug)]
pub(crate) struct Credentials {
    pub email: Email,
    pub name: Option<DisplayName>,
}

impl Credentials {
    /// Parse an email, a password and a name, reporting every broken rule at once.
    pub fn parse(
        policy: &PasswordPolicy,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<Credentials, ServiceError> {
        let mut errors = Vec::new();
        let parsed = Email::parse(email);
        if let Err(e) = &parsed {
            errors.push(FieldError {
                field: "email",
                code: e.code(),
                message: e.to_string(),
            });
        }
        errors.extend(FieldError::all(
            "password",
            policy.check(password, Some(email.trim())),
        ));
        let name = DisplayName::parse(name)
            .map_err(|v| errors.push(FieldError::new("name", v)))
            .ok()
            .flatten();
        match parsed {
            Ok(email) if errors.is_empty() => Ok(Credentials { email, name }),
            _ => Err(ServiceError::Validation(errors)),
        }
    }
}

/// A new account's details besides email and password.
#[derive(Debug, Clone, Default)]
pub(crate) struct AccountSpec {
    pub name: Option<DisplayName>,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub metadata: Option<Metadata>,
    /// The account is made by its owner (register): the audit row names it as the actor.
    pub self_service: bool,
    /// The outside identity the account is made with (sign-up through a provider), linked in
    /// the same transaction.
    pub identity: Option<store::oauth::NewIdentity>,
}

/// Hash the password (an account made through a provider has none), then insert the account
/// with its roles, metadata and identity and the audit row `audit` (its `user_id` set to the
/// new account) in one transaction. A taken email (checked before hashing, and again by the
/// unique index) is 409 `email_taken`.
pub(crate) async fn create_account(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    email: &Email,
    password: Option<&str>,
    spec: AccountSpec,
    audit: AuditEntry,
) -> Result<user_rows::Model, ServiceError> {
    let taken = || ServiceError::Conflict {
        code: "email_taken",
        detail: "an account with this email already exists".into(),
    };
    if store::users::find_by_email(db, email.key())
        .await?
        .is_some()
    {
        return Err(taken());
    }
    let hash = match password {
        Some(password) => Some(hasher.hash(password.to_string()).await?),
        None => None,
    };
    let txn = db.begin().await.map_err(StoreError::from)?;
    let new = store::users::NewUser {
        email: email.as_str().to_string(),
        email_lower: email.key().to_string(),
        password_hash: hash,
        name: spec.name.map(DisplayName::into_string),
        roles: spec.roles,
        email_verified: spec.email_verified,
    };
    let user = match store::users::insert(&txn, new).await {
        Ok(u) => u,
        Err(StoreError::Conflict(_)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    };
    if let Some(identity) = spec.identity {
        store::oauth::insert_identity(&txn, user.id, identity).await?;
    }
    if let Some(metadata) = spec.metadata {
        let change = store::users::ProfileChange {
            metadata: Some(metadata.into_value()),
            ..Default::default()
        };
        store::users::update_profile(&txn, user.id, change).await?;
    }
    let audit = AuditEntry {
        user_id: Some(user.id),
        actor_id: if spec.self_service {
            Some(user.id)
        } else {
            audit.actor_id
        },
        ..audit
    };
    store::audit::record(&txn, audit).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(user)
}
