//! The hosted pages' side of signing in: a page session is an ordinary database session (listed, revoked and ended like any other) carried by a cookie derived from it, CSRF tokens for its forms, and the one-time codes a sign-in hands an app, which it exchanges for a token pair.

use chrono::Duration;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::audit::audit_after;
use super::error::ServiceError;
use super::login::{Login, Principal, account_state};
use super::views::{SharedUser, TokenPair, UserView};
use crate::crypto::tokens::{self, PageKey};
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::store;
use crate::store::audit::AuditEntry;
use crate::store::entities::sessions as session_rows;
use crate::store::one_time_tokens::Purpose;

/// How long a sign-in code lives between the redirect and the app's exchange.
const CODE_TTL: Duration = Duration::seconds(60);
/// A page session's `last_used_at` is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

fn invalid_code() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_code",
        detail: "the code is unknown, expired or already used".into(),
    }
}

/// Page sessions, CSRF tokens and sign-in codes. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    db: DatabaseConnection,
    login: Login,
    key: PageKey,
}

impl Web {
    /// Keys from the signing key's `materials` (the current one first, then previous ones).
    pub fn new(db: DatabaseConnection, login: Login, materials: &[&[u8]]) -> Self {
        Self {
            db,
            login,
            key: PageKey::new(materials),
        }
    }

    /// A live session's row, when `id` names one.
    async fn live(&self, id: Uuid) -> Result<Option<session_rows::Model>, ServiceError> {
        let now = store::now();
        Ok(store::sessions::find(&self.db, id)
            .await?
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now))
    }

    /// The cookie that carries the session a sign-in opened.
    pub async fn session_cookie(&self, pair: &TokenPair) -> Result<String, ServiceError> {
        let session = self
            .live(pair.session_id)
            .await?
            .ok_or_else(|| ServiceError::Internal("a new session is gone".into()))?;
        Ok(self.key.session_cookie(&session.salt, session.id))
    }

    /// The person behind a page-session cookie, while its session is live and its account may
    /// sign in; `None` for anything else (the page then asks to sign in).
    pub async fn authenticate(&self, cookie: &str) -> Result<Option<Principal>, ServiceError> {
        let Some(id) = PageKey::cookie_session(cookie) else {
            return Ok(None);
        };
        let Some(session) = self.live(id).await? else {
            return Ok(None);
        };
        if !self.key.verify_cookie(&session.salt, id, cookie) {
            return Ok(None);
        }
        let Some((user, roles)) = store::users::find_with_roles(&self.db, session.user_id)
            .await?
            .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
        else {
            return Ok(None);
        };
        let now = store::now();
        if now.signed_duration_since(session.last_used_at) > TOUCH_EVERY {
            store::sessions::touch(&self.db, id, now).await?;
        }
        Ok(Some(Principal {
            user_id: user.id,
            session_id: id,
            aal: session.aal,
            user: SharedUser::new(UserView::new(user, roles)),
        }))
    }

    /// The CSRF token of a browser with CSRF cookie `nonce` and page-session cookie `session`.
    pub fn csrf_token(&self, nonce: &str, session: &str) -> String {
        self.key.csrf_token(nonce, session)
    }

    /// Whether a form's `presented` token is that browser's.
    pub fn csrf_ok(&self, nonce: &str, session: &str, presented: &str) -> bool {
        self.key.verify_csrf(nonce, session, presented)
    }

    /// A single-use code (valid one minute) that an app exchanges for a session of its own at
    /// the level (`aal`) of `user`'s page session `session`. Only its hash is stored.
    pub async fn issue_code(&self, user: Uuid, session: Uuid) -> Result<String, ServiceError> {
        let code = format!("{}.{}", session.simple(), tokens::random_token(32));
        store::one_time_tokens::issue(
            &self.db,
            user,
            Purpose::SignInCode,
            tokens::sha256_hex(&code),
            store::now() + CODE_TTL,
        )
        .await?;
        Ok(code)
    }

    /// Spend a sign-in code for a token pair: a new session of the code's user, at the level of
    /// the page session that issued it (which must still be live).
    pub async fn exchange_code(
        &self,
        code: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let page_session = code
            .split_once('.')
            .and_then(|(id, _)| Uuid::try_parse(id).ok())
            .ok_or_else(invalid_code)?;
        let pending = store::one_time_tokens::take(
            &self.db,
            Purpose::SignInCode,
            &tokens::sha256_hex(code),
            store::now(),
        )
        .await?
        .ok_or_else(invalid_code)?;
        let session = self
            .live(page_session)
            .await?
            .filter(|s| s.user_id == pending.user_id)
            .ok_or_else(invalid_code)?;
        let user = store::users::find(&self.db, pending.user_id)
            .await?
            .filter(|u| may_log_in(account_state(u), false).is_ok())
            .ok_or_else(invalid_code)?;
        let pair = self.login.start_session(user, &session.aal, client).await?;
        let entry = AuditEntry {
            event: "sign_in_code_exchanged",
            user_id: Some(pair.user.id),
            actor_id: Some(pair.user.id),
            detail: serde_json::json!({"session_id": pair.session_id, "page_session_id": session.id}),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        Ok(pair)
    }
}
