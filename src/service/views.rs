//! The shapes the API returns (User, Session, token pair, pages, roles, API keys, audit rows), built from stored rows; never a hash, secret or token of storage.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Paging;
use crate::domain::roles::Role;
use crate::store::entities::{api_keys, audit_log, roles, sessions, users};

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

/// A user view shared by the principal cache and every call it authenticates, rendered to JSON
/// at most once: a cached caller costs neither a copy of the view nor its serialization.
#[derive(Debug, Clone)]
pub struct SharedUser(Arc<Rendered>);

#[derive(Debug)]
struct Rendered {
    view: UserView,
    json: OnceLock<Box<RawValue>>,
}

impl SharedUser {
    pub fn new(view: UserView) -> Self {
        Self(Arc::new(Rendered {
            view,
            json: OnceLock::new(),
        }))
    }

    /// How long the view's JSON is, without keeping it (rendered only when answered).
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        if let Some(json) = self.0.json.get() {
            return json.get().len();
        }
        let mut count = Count(0);
        match serde_json::to_writer(&mut count, &self.0.view) {
            Ok(()) => count.0,
            Err(_) => usize::MAX,
        }
    }

    /// The view's JSON, rendered on first use.
    pub fn json(&self) -> &RawValue {
        self.0.json.get_or_init(|| {
            // A view is ids, strings, booleans, times and a JSON value: it always serializes.
            serde_json::value::to_raw_value(&self.0.view).expect("a user view serializes")
        })
    }
}

impl std::ops::Deref for SharedUser {
    type Target = UserView;

    fn deref(&self) -> &UserView {
        &self.0.view
    }
}

impl Serialize for SharedUser {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
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
    #[schema(value_type = UserView)]
    pub user: SharedUser,
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
    /// A fresh device token after a password or MFA sign-in; sent as a cookie, never in JSON.
    #[serde(skip)]
    pub device_token: Option<String>,
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

/// One page of a listing: `{"items": [...], "page": 1, "per_page": 50, "total": 123}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

impl<T: ToSchema> Page<T> {
    pub fn new(items: Vec<T>, paging: Paging, total: u64) -> Self {
        Self {
            items,
            page: paging.page,
            per_page: paging.per_page,
            total,
        }
    }
}

/// A role of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub rank: i32,
    pub permissions: Vec<String>,
}

impl RoleView {
    pub fn new(r: roles::Model) -> Self {
        Self {
            permissions: serde_json::from_value(r.permissions).unwrap_or_default(),
            name: r.name,
            description: r.description,
            rank: r.rank,
        }
    }
}

/// `{"roles": [...]}`, highest rank first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

/// A service API key as listings show it: never the key, only its first characters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyView {
    pub fn new(k: api_keys::Model) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            scopes: serde_json::from_value(k.scopes).unwrap_or_default(),
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new service API key: the only answer that ever contains `key`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    /// `gh_…`; shown once, stored only as a hash.
    pub key: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One audit log row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub event: String,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl AuditView {
    pub fn new(a: audit_log::Model) -> Self {
        Self {
            id: a.id,
            at: a.at,
            event: a.event,
            user_id: a.user_id,
            actor_id: a.actor_id,
            ip_address: a.ip_address,
            user_agent: a.user_agent,
            detail: a.detail,
        }
    }
}
