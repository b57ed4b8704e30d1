//! Decisions about sessions that must not depend on storage: what a lost refresh race means, how long a lock lasts, and when a sign-in is recent enough to add a way in.

use chrono::{DateTime, Duration, Utc};

/// What the state of a session says about a refresh token that lost its conditional update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMiss {
    /// Revoked or expired: the token is simply invalid.
    Dead,
    /// A racer (or a lost response) presented the token just spent: hand out the same successor.
    Grace,
    /// An older token presented again after the grace: treat as theft and revoke the session.
    Replay,
}

/// The state of a session as read after a lost rotation.
#[derive(Debug, Clone, Copy)]
pub struct SessionState {
    pub generation: u64,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub expires_at: DateTime<Utc>,
}

/// Classify a refresh of generation `presented` that did not win the rotation.
pub fn classify_refresh_miss(
    presented: u64,
    state: SessionState,
    now: DateTime<Utc>,
    grace: Duration,
) -> RefreshMiss {
    if state.revoked || state.expires_at <= now {
        return RefreshMiss::Dead;
    }
    let just_spent = state.generation == presented.saturating_add(1);
    let within_grace = state
        .refreshed_at
        .is_some_and(|at| now.signed_duration_since(at) <= grace);
    if just_spent && within_grace {
        RefreshMiss::Grace
    } else {
        RefreshMiss::Replay
    }
}

/// Seconds to announce in `Retry-After` for a lock ending at `until` (at least 1).
pub fn retry_after_seconds(
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    lockout: Duration,
) -> u64 {
    let remaining = until.map_or(lockout, |u| u.signed_duration_since(now));
    remaining.num_seconds().max(1) as u64
}

/// How recent a sign-in must be to add a way into the account (a passkey): a session taken
/// over later (a stolen token) cannot plant a credential that outlives a password change.
pub const REAUTHENTICATE_WITHIN: Duration = Duration::minutes(10);

/// Whether a session that signed in at `signed_in_at` may add a way into its account `now`.
pub fn signed_in_recently(signed_in_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(signed_in_at) <= REAUTHENTICATE_WITHIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(
        generation: u64,
        refreshed_ago: Option<i64>,
        revoked: bool,
        now: DateTime<Utc>,
    ) -> SessionState {
        SessionState {
            generation,
            refreshed_at: refreshed_ago.map(|s| now - Duration::seconds(s)),
            revoked,
            expires_at: now + Duration::hours(1),
        }
    }

    #[test]
    fn racers_within_grace_get_the_successor() {
        let now = Utc::now();
        let g = Duration::seconds(10);
        assert_eq!(
            classify_refresh_miss(3, state(4, Some(2), false, now), now, g),
            RefreshMiss::Grace
        );
        assert_eq!(
            classify_refresh_miss(3, state(4, Some(10), false, now), now, g),
            RefreshMiss::Grace
        );
    }

    #[test]
    fn late_or_older_reuse_is_replay() {
        let now = Utc::now();
        let g = Duration::seconds(10);
        assert_eq!(
            classify_refresh_miss(3, state(4, Some(11), false, now), now, g),
            RefreshMiss::Replay
        );
        assert_eq!(
            classify_refresh_miss(2, state(4, Some(1), false, now), now, g),
            RefreshMiss::Replay
        );
        assert_eq!(
            classify_refresh_miss(3, state(4, None, false, now), now, g),
            RefreshMiss::Replay
        );
        assert_eq!(
            classify_refresh_miss(3, state(4, Some(1), false, now), now, Duration::zero()),
            RefreshMiss::Replay
        );
    }

    #[test]
    fn dead_sessions_are_just_invalid() {
        let now = Utc::now();
        let g = Duration::seconds(10);
        assert_eq!(
            classify_refresh_miss(3, state(4, Some(1), true, now), now, g),
            RefreshMiss::Dead
        );
        let mut s = state(4, Some(1), false, now);
        s.expires_at = now;
        assert_eq!(classify_refresh_miss(3, s, now, g), RefreshMiss::Dead);
    }

    #[test]
    fn retry_after_is_the_remaining_lock() {
        let now = Utc::now();
        let l = Duration::minutes(15);
        assert_eq!(
            retry_after_seconds(Some(now + Duration::seconds(90)), now, l),
            90
        );
        assert_eq!(retry_after_seconds(None, now, l), 900);
        assert_eq!(
            retry_after_seconds(Some(now - Duration::seconds(5)), now, l),
            1
        );
    }

    #[test]
    fn a_sign_in_is_recent_for_ten_minutes() {
        let t = Utc::now();
        assert!(signed_in_recently(t, t));
        assert!(signed_in_recently(t, t + Duration::minutes(10)));
        assert!(!signed_in_recently(
            t,
            t + Duration::minutes(10) + Duration::seconds(1)
        ));
    }
}
