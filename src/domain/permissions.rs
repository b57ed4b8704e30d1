//! The permissions roles grant and service API keys carry: each name is written here once (outside the frozen migrations).

use std::fmt;

/// Declares every permission once: the enum, its `ALL` list, each name, and a marker type
/// per permission in [`perm`] for `RequirePermission<perm::X>`.
macro_rules! permissions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// One thing a caller may be allowed to do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission {
            $($variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }

        /// The permissions as types, for `RequirePermission<perm::UsersRead>` and the like.
        pub mod perm {
            use super::{Permission, PermissionMarker};
            $(
                #[doc = concat!("`", $name, "`")]
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;
                impl PermissionMarker for $variant {
                    const PERMISSION: Permission = Permission::$variant;
                }
            )*
        }
    };
}

permissions!(
    UsersRead => "users:read",
    UsersCreate => "users:create",
    UsersManage => "users:manage",
    UsersUnlock => "users:unlock",
    RolesAssign => "roles:assign",
    AuditRead => "audit:read",
    SessionsCleanup => "sessions:cleanup",
    ApiKeysManage => "api_keys:manage",
    Introspect => "introspect",
    BillingManage => "billing:manage",
    ProfileRead => "profile:read",
    ProfileWrite => "profile:write",
    UsageWrite => "usage:write",
    IntegrationsDecrypt => "integrations:decrypt",
    ClientsManage => "clients:manage",
);

/// A permission as a type, for `RequirePermission<P>`.
pub trait PermissionMarker: Send + Sync + 'static {
    const PERMISSION: Permission;
}

impl Permission {
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

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.name() == name)
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
        for &p in Permission::ALL {
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
