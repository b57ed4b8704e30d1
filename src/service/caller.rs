//! Who is calling: a person behind an access token or a service behind an API key, and what each may do.

use uuid::Uuid;

use super::login::Principal;
use crate::domain::permissions::Permission;

/// A live service API key, as its caller.
#[derive(Debug, Clone)]
pub struct ServiceKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    User(Principal),
    Service(ServiceKey),
}

impl Caller {
    /// The person calling (for an audit row's actor); none for a service key.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Caller::User(who) => Some(who.user_id),
            Caller::Service(_) => None,
        }
    }

    /// Whether the caller holds `permission`: through a role for a person, as a scope for a key.
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Caller::User(who) => who.allows(permission),
            Caller::Service(key) => key.scopes.iter().any(|s| s == permission.name()),
        }
    }
}
