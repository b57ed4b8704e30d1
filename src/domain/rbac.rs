//! Who may see, manage and grant whom: the contract's RBAC rules as pure functions, written once and used by every route and the CLI.

use super::roles::Role;

/// What a rule answers: go ahead, refuse (403 with a stable code), or act as if the target did
/// not exist (404: a resource the caller may not see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Forbid(&'static str),
    Hide,
}

/// The target ranks at or above the actor.
pub const CANNOT_MANAGE: &str = "cannot_manage_user";
/// The actor may not grant (or take away) this role.
pub const NOT_GRANTABLE: &str = "role_not_grantable";
/// The change would lower the actor's own highest role.
pub const LOWERS_OWN_ROLE: &str = "cannot_lower_own_role";

/// Whether the actor may see the target at all: itself, or anyone from moderator up.
pub fn may_see(actor: Option<Role>, is_self: bool) -> bool {
    is_self || actor >= Some(Role::Moderator)
}

/// Whether an actor with highest role `actor` may manage (update, disable, delete, change the
/// roles of) a target with highest role `target`: strictly higher, or `super_admin`.
pub fn may_manage(actor: Option<Role>, target: Option<Role>) -> bool {
    match actor {
        Some(Role::SuperAdmin) => true,
        Some(a) => target.is_none_or(|t| a > t),
        None => false,
    }
}

/// Whether the actor may grant `role`: strictly below its own highest, or anything for `super_admin`.
pub fn may_grant(actor: Option<Role>, role: Role) -> bool {
    match actor {
        Some(Role::SuperAdmin) => true,
        Some(a) => role < a,
        None => false,
    }
}

/// Reading a user.
pub fn read(actor: Option<Role>, is_self: bool) -> Decision {
    if may_see(actor, is_self) {
        Decision::Allow
    } else {
        Decision::Hide
    }
}

/// Changing a user's name or metadata: oneself, or a manager.
pub fn update_profile(actor: Option<Role>, target: Option<Role>, is_self: bool) -> Decision {
    if is_self {
        Decision::Allow
    } else {
        manage(actor, target, false)
    }
}

/// Disabling, enabling or deleting a user: a manager only (oneself only as `super_admin`).
pub fn manage(actor: Option<Role>, target: Option<Role>, is_self: bool) -> Decision {
    if !may_see(actor, is_self) {
        Decision::Hide
    } else if may_manage(actor, target) {
        Decision::Allow
    } else {
        Decision::Forbid(CANNOT_MANAGE)
    }
}

/// Replacing a user's roles `current` with `new`: a manager who may grant every role added or
/// taken away, and never lowering its own highest role.
pub fn change_roles(
    actor: Option<Role>,
    current: &[Role],
    new: &[Role],
    is_self: bool,
) -> Decision {
    let target = current.iter().copied().max();
    match manage(actor, target, is_self) {
        Decision::Allow => {}
        other => return other,
    }
    let added = new.iter().filter(|r| !current.contains(r));
    let removed = current.iter().filter(|r| !new.contains(r));
    if added.chain(removed).any(|r| !may_grant(actor, *r)) {
        return Decision::Forbid(NOT_GRANTABLE);
    }
    if is_self && new.iter().copied().max() < target {
        return Decision::Forbid(LOWERS_OWN_ROLE);
    }
    Decision::Allow
}

/// Creating a user with `roles`.
pub fn create_with(actor: Option<Role>, roles: &[Role]) -> Decision {
    if roles.iter().all(|r| may_grant(actor, *r)) {
        Decision::Allow
    } else {
        Decision::Forbid(NOT_GRANTABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    /// Actors and targets, highest first, then "no role at all".
    const TIERS: [Option<Role>; 6] = [
        Some(SuperAdmin),
        Some(Admin),
        Some(Moderator),
        Some(User),
        Some(Guest),
        None,
    ];

    /// `MANAGE[a][t]`: may actor tier `a` manage target tier `t` (indexes into `TIERS`).
    const MANAGE: [[bool; 6]; 6] = [
        [true, true, true, true, true, true],
        [false, false, true, true, true, true],
        [false, false, false, true, true, true],
        [false, false, false, false, true, true],
        [false, false, false, false, false, true],
        [false, false, false, false, false, false],
    ];

    /// `GRANT[a][r]`: may actor tier `a` grant role `Role::ALL[r]`.
    const GRANT: [[bool; 5]; 6] = [
        [true, true, true, true, true],
        [false, false, true, true, true],
        [false, false, false, true, true],
        [false, false, false, false, true],
        [false, false, false, false, false],
        [false, false, false, false, false],
    ];

    #[test]
    fn manage_matrix_for_every_actor_and_target() {
        for (a, actor) in TIERS.iter().enumerate() {
            for (t, target) in TIERS.iter().enumerate() {
                assert_eq!(
                    may_manage(*actor, *target),
                    MANAGE[a][t],
                    "{actor:?} manages {target:?}"
                );
            }
        }
    }

    #[test]
    fn grant_matrix_for_every_actor_and_role() {
        for (a, actor) in TIERS.iter().enumerate() {
            for (r, role) in Role::ALL.iter().enumerate() {
                assert_eq!(
                    may_grant(*actor, *role),
                    GRANT[a][r],
                    "{actor:?} grants {role:?}"
                );
            }
        }
    }

    #[test]
    fn below_moderator_other_users_are_invisible() {
        for (a, actor) in TIERS.iter().enumerate() {
            for (t, target) in TIERS.iter().enumerate() {
                let sees = a <= 2; // super_admin, admin, moderator
                let expect_hidden = !sees;
                assert_eq!(read(*actor, false) == Decision::Hide, expect_hidden);
                assert_eq!(read(*actor, true), Decision::Allow);
                let managed = manage(*actor, *target, false);
                let expected = if !sees {
                    Decision::Hide
                } else if MANAGE[a][t] {
                    Decision::Allow
                } else {
                    Decision::Forbid(CANNOT_MANAGE)
                };
                assert_eq!(managed, expected, "{actor:?} manages {target:?}");
                assert_eq!(
                    update_profile(*actor, *target, false),
                    expected,
                    "{actor:?} edits {target:?}"
                );
            }
        }
    }

    #[test]
    fn everyone_edits_their_own_profile_but_only_super_admin_manages_itself() {
        for actor in TIERS {
            assert_eq!(update_profile(actor, actor, true), Decision::Allow);
            let expected = if actor == Some(SuperAdmin) {
                Decision::Allow
            } else {
                Decision::Forbid(CANNOT_MANAGE)
            };
            assert_eq!(manage(actor, actor, true), expected, "{actor:?} on itself");
        }
    }

    #[test]
    fn role_changes_for_every_actor_target_and_role() {
        for (a, actor) in TIERS.iter().enumerate() {
            for (t, target) in TIERS.iter().enumerate() {
                let current: Vec<Role> = target.iter().copied().collect();
                for (r, role) in Role::ALL.iter().enumerate() {
                    let new = [*role];
                    let got = change_roles(*actor, &current, &new, false);
                    let changed = current != new;
                    let expected = if a > 2 {
                        Decision::Hide
                    } else if !MANAGE[a][t] {
                        Decision::Forbid(CANNOT_MANAGE)
                    } else if changed
                        && (!GRANT[a][r]
                            || target.is_some_and(|tr| {
                                !GRANT[a][Role::ALL.iter().position(|x| *x == tr).unwrap()]
                            }))
                    {
                        Decision::Forbid(NOT_GRANTABLE)
                    } else {
                        Decision::Allow
                    };
                    assert_eq!(got, expected, "{actor:?} sets {target:?} to {role:?}");
                }
            }
        }
    }

    #[test]
    fn nobody_lowers_their_own_role() {
        // Only a super_admin manages itself; it may add roles but never drop below super_admin.
        let me = [SuperAdmin];
        for role in Role::ALL {
            let got = change_roles(Some(SuperAdmin), &me, &[role], true);
            let expected = if role == SuperAdmin {
                Decision::Allow
            } else {
                Decision::Forbid(LOWERS_OWN_ROLE)
            };
            assert_eq!(got, expected, "super_admin sets itself to {role:?}");
        }
        assert_eq!(
            change_roles(Some(SuperAdmin), &me, &[SuperAdmin, User], true),
            Decision::Allow
        );
        for actor in [Admin, Moderator, User, Guest] {
            assert_eq!(
                change_roles(Some(actor), &[actor], &[actor, Guest], true),
                Decision::Forbid(CANNOT_MANAGE),
                "{actor:?} adds a role to itself"
            );
        }
    }

    #[test]
    fn creating_needs_every_role_grantable() {
        assert_eq!(
            create_with(Some(Admin), &[User, Moderator]),
            Decision::Allow
        );
        assert_eq!(
            create_with(Some(Admin), &[User, Admin]),
            Decision::Forbid(NOT_GRANTABLE)
        );
        assert_eq!(
            create_with(Some(SuperAdmin), &[SuperAdmin]),
            Decision::Allow
        );
    }
}
