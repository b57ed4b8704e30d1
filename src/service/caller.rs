//! Who is calling: a person behind an access token or a service behind an API key, and what each may do.

use uuid::Uuid;

use super::auth::Principal;
use crate::domain::roles::Role;

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
    /// Whether the caller holds `permission`: through a role for a person, as a scope for a key.
    pub fn allows(&self, permission: &str) -> bool {
        match self {
            Caller::User(who) => who.allows(permission),
            Caller::Service(key) => key.scopes.iter().any(|s| s == permission),
        }
    }
}

impl Principal {
    /// Whether any of the caller's current roles carries `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.user
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .any(|r| r.allows(permission))
    }
}
