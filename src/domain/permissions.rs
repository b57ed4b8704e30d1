//! The permissions roles grant and service API keys carry: each name is written here once (outside the frozen migrations).

use std::fmt;

/// One thing a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    UsersRead,
    UsersCreate,
    UsersManage,
    UsersUnlock,
    RolesAssign,
    AuditRead,
    SessionsCleanup,
    ApiKeysManage,
    Introspect,
    BillingManage,
    ProfileRead,
    ProfileWrite,
    UsageWrite,
    IntegrationsDecrypt,
}

impl Permission {
    pub const ALL: [Permission; 14] = [
        Permission::UsersRead,
        Permission::UsersCreate,
        Permission::UsersManage,
        Permission::UsersUnlock,
        Permission::RolesAssign,
        Permission::AuditRead,
        Permission::SessionsCleanup,
        Permission::ApiKeysManage,
        Permission::Introspect,
        Permission::BillingManage,
        Permission::ProfileRead,
        Permission::ProfileWrite,
        Permission::UsageWrite,
        Permission::IntegrationsDecrypt,
    ];

    /// The scopes a service API key may carry: what a service does without a person behind it.
    pub const API_KEY_SCOPES: [Permission; 5] = [
        Permission::Introspect,
        Permission::UsersRead,
        Permission::AuditRead,
        Permission::UsageWrite,
        Permission::IntegrationsDecrypt,
    ];

    /// The catalogue's spelling of "every permission" (super_admin's grant).
    pub const EVERYTHING: &'static str = "*";

    pub fn name(self) -> &'static str {
        match self {
            Permission::UsersRead => "users:read",
            Permission::UsersCreate => "users:create",
            Permission::UsersManage => "users:manage",
            Permission::UsersUnlock => "users:unlock",
            Permission::RolesAssign => "roles:assign",
            Permission::AuditRead => "audit:read",
            Permission::SessionsCleanup => "sessions:cleanup",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::Introspect => "introspect",
            Permission::BillingManage => "billing:manage",
            Permission::ProfileRead => "profile:read",
            Permission::ProfileWrite => "profile:write",
            Permission::UsageWrite => "usage:write",
            Permission::IntegrationsDecrypt => "integrations:decrypt",
        }
    }

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    /// A scope a service API key may carry.
    pub fn parse_scope(name: &str) -> Option<Permission> {
        Permission::API_KEY_SCOPES
            .into_iter()
            .find(|p| p.name() == name)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.name()), Some(p));
        }
        let mut names: Vec<_> = Permission::ALL.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
        assert_eq!(Permission::parse(Permission::EVERYTHING), None);
    }

    #[test]
    fn only_service_scopes_parse_as_scopes() {
        assert_eq!(
            Permission::parse_scope("usage:write"),
            Some(Permission::UsageWrite)
        );
        assert_eq!(Permission::parse_scope("users:manage"), None);
        assert_eq!(Permission::parse_scope("nope"), None);
    }
}
