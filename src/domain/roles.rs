//! The five built-in roles and their ranks: the single place that says which role is higher and what each grants.

use super::permissions::Permission;

/// A built-in role, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Guest,
    User,
    Moderator,
    Admin,
    SuperAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SuperAdmin,
        Role::Admin,
        Role::Moderator,
        Role::User,
        Role::Guest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::User => "user",
            Role::Guest => "guest",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn rank(self) -> i32 {
        match self {
            Role::SuperAdmin => 100,
            Role::Admin => 80,
            Role::Moderator => 60,
            Role::User => 40,
            Role::Guest => 20,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::SuperAdmin => "Full control, including other administrators",
            Role::Admin => "Manages users below admin, service API keys, the audit log and billing",
            Role::Moderator => {
                "Reads every user; manages users and guests (profile, active, roles, delete)"
            }
            Role::User => "A regular account",
            Role::Guest => "A restricted account with read-only access to itself",
        }
    }

    /// What holders of this role may do; `None` means every permission.
    fn grants(self) -> Option<&'static [Permission]> {
        use Permission::*;
        match self {
            Role::SuperAdmin => None,
            Role::Admin => Some(&[
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
            ]),
            Role::Moderator => Some(&[
                UsersRead,
                UsersManage,
                RolesAssign,
                ProfileRead,
                ProfileWrite,
            ]),
            Role::User => Some(&[ProfileRead, ProfileWrite]),
            Role::Guest => Some(&[ProfileRead]),
        }
    }

    /// The role's permissions as the catalogue stores and `GET /roles` shows them (`*` is all).
    pub fn permissions(self) -> Vec<&'static str> {
        match self.grants() {
            None => vec![Permission::EVERYTHING],
            Some(list) => list.iter().map(|p| p.name()).collect(),
        }
    }

    /// Whether this role carries `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        self.grants().is_none_or(|list| list.contains(&permission))
    }

    /// The highest role among names (unknown names ignored).
    pub fn highest<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        names.into_iter().filter_map(Role::parse).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_declared_order() {
        for pair in Role::ALL.windows(2) {
            assert!(pair[0] > pair[1]);
            assert!(pair[0].rank() > pair[1].rank());
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        assert_eq!(
            Role::highest(["user", "nope", "moderator"]),
            Some(Role::Moderator)
        );
    }

    #[test]
    fn super_admin_holds_everything_and_guests_only_read_themselves() {
        for &p in Permission::ALL {
            assert!(Role::SuperAdmin.allows(p));
        }
        assert_eq!(Role::SuperAdmin.permissions(), vec!["*"]);
        assert!(Role::Guest.allows(Permission::ProfileRead));
        assert!(!Role::Guest.allows(Permission::ProfileWrite));
        assert!(Role::Moderator.allows(Permission::UsersRead));
        assert!(!Role::Moderator.allows(Permission::AuditRead));
        assert!(!Role::Admin.allows(Permission::UsageWrite));
    }
}
