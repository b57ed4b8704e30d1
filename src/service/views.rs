//! The shapes the API returns (User, Session, token pair), built from stored rows; never a hash, secret or token of storage.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::roles::Role;
use crate::store::entities::{sessions, users};

/// A user as every route shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// Highest first.
    pub roles: Vec<String>,
    pub active: bool,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

/// Role names sorted highest first (unknown custom roles last, by name).
pub fn sort_roles(roles: &mut [String]) {
    roles.sort_by(|a, b| {
        let rank = |n: &str| Role::parse(n).map_or(0, Role::rank);
        rank(b).cmp(&rank(a)).then_with(|| a.cmp(b))
    });
}

impl UserView {
    pub fn new(u: users::Model, mut roles: Vec<String>) -> Self {
        sort_roles(&mut roles);
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            roles,
            active: u.active,
            email_verified: u.email_verified,
            mfa_enabled: u.mfa_enabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
            metadata: u.metadata,
        }
    }
}

/// `{"user": User}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

/// What login, refresh and (with auto-login) register return.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user: UserView,
}

/// A login session as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub aal: String,
    pub current: bool,
}

impl SessionView {
    pub fn new(s: sessions::Model, current: Uuid) -> Self {
        Self {
            current: s.id == current,
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            aal: s.aal,
        }
    }
}

/// `{"sessions": [...], "total": n}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    pub total: usize,
}
