//! The five built-in roles and their ranks: the single place that says which role is higher.

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

    /// What holders of this role may do. `*` is everything. The same names are the scopes a
    /// service API key can carry (see `API_KEY_SCOPES`).
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::SuperAdmin => &["*"],
            Role::Admin => &[
                "users:read",
                "users:create",
                "users:manage",
                "users:unlock",
                "roles:assign",
                "audit:read",
                "sessions:cleanup",
                "api_keys:manage",
                "introspect",
                "billing:manage",
                "profile:read",
                "profile:write",
            ],
            Role::Moderator => &[
                "users:read",
                "users:manage",
                "roles:assign",
                "profile:read",
                "profile:write",
            ],
            Role::User => &["profile:read", "profile:write"],
            Role::Guest => &["profile:read"],
        }
    }

    /// Whether this role carries `permission`.
    pub fn allows(self, permission: &str) -> bool {
        self.permissions()
            .iter()
            .any(|p| *p == "*" || *p == permission)
    }

    /// The highest role among names (unknown names ignored).
    pub fn highest<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        names.into_iter().filter_map(Role::parse).max()
    }
}

/// The scopes a service API key may carry: what a service does without a person behind it.
pub const API_KEY_SCOPES: [&str; 5] = [
    "introspect",
    "users:read",
    "audit:read",
    "usage:write",
    "integrations:decrypt",
];

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
}
