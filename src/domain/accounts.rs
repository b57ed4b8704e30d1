//! Whether an account may sign in: the one rule every way of signing in asks.

/// What the rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct AccountState {
    pub active: bool,
    pub deleted: bool,
    pub email_verified: bool,
}

/// Why an account whose credentials were right may not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Soft-deleted: the account is gone, and says so no more than an unknown one.
    Deleted,
    Disabled,
    EmailNotVerified,
}

/// `Ok` when the account may sign in; `require_verified` is the operator's
/// `AUTH_REQUIRE_EMAIL_VERIFICATION`.
pub fn may_log_in(account: AccountState, require_verified: bool) -> Result<(), Refusal> {
    if account.deleted {
        Err(Refusal::Deleted)
    } else if !account.active {
        Err(Refusal::Disabled)
    } else if require_verified && !account.email_verified {
        Err(Refusal::EmailNotVerified)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination() {
        for active in [false, true] {
            for deleted in [false, true] {
                for email_verified in [false, true] {
                    for require in [false, true] {
                        let state = AccountState {
                            active,
                            deleted,
                            email_verified,
                        };
                        let expected = if deleted {
                            Err(Refusal::Deleted)
                        } else if !active {
                            Err(Refusal::Disabled)
                        } else if require && !email_verified {
                            Err(Refusal::EmailNotVerified)
                        } else {
                            Ok(())
                        };
                        assert_eq!(may_log_in(state, require), expected, "{state:?} {require}");
                    }
                }
            }
        }
    }
}
