//! The per-instance cache of authenticated principals (live sessions and user views), so an authenticated call costs no database read, with evictions that reach every instance and a bypass whenever one could have been missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use uuid::Uuid;

use super::views::SharedUser;
use crate::bus::{Bus, BusEvent, Eviction};
use crate::config::Backend;
use crate::config::{CacheConfig, CacheMode, Config};

/// What a live session contributes to a principal.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub user_id: Uuid,
    pub aal: String,
    /// Checked on every call: the cache never lengthens a session.
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// A user view whose JSON is larger than this (big metadata) is not cached, which bounds memory
/// at `AUTH_CACHE_MAX_ENTRIES` × twice this (the view, and its JSON once answered), plus the
/// sessions.
const MAX_VIEW_BYTES: usize = 16 * 1024;

/// Evictions bump this; a fill that read the database before the latest eviction is dropped,
/// so a read racing a revocation can never put the revoked state back.
type Epoch = u64;

struct Inner {
    sessions: Cache<Uuid, Arc<SessionFacts>>,
    users: Cache<Uuid, SharedUser>,
    epoch: AtomicU64,
    /// Evictions reach this instance (the channel is subscribed): until then, and whenever it
    /// drops, every call reads the database.
    live: AtomicBool,
    bus: Bus,
    /// Evictions this instance sent and is waiting to hear back, by tag.
    echoes: std::sync::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>>,
    next_tag: AtomicU64,
}

/// How long an eviction waits to come back through the channel before the change answers.
/// When it has, every other subscriber has been sent it too.
const ECHO_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Cheap to clone. A disabled cache answers every look-up with a miss and drops every fill.
#[derive(Clone)]
pub struct Principals {
    inner: Option<Arc<Inner>>,
}

impl Principals {
    /// The cache the configuration asks for, with its channel (see `AUTH_CACHE`): PostgreSQL
    /// NOTIFY on PostgreSQL, else Redis pub/sub when `REDIS_URL` is set, else off unless the
    /// operator declared a single instance.
    pub fn new(config: &Config, db: &sea_orm::DatabaseConnection) -> Self {
        let redis = config.rate_limit.redis_url.as_ref().map(|u| u.expose());
        let bus = match (config.cache.mode, config.database.backend, redis) {
            (CacheMode::Off, ..) => None,
            (CacheMode::SingleInstance, ..) => Some(Bus::Local),
            (CacheMode::Auto, Backend::Postgres, _) => Some(Bus::Postgres {
                db: db.clone(),
                url: config.database.url.expose().to_string(),
            }),
            (CacheMode::Auto, _, Some(url)) => match Bus::redis(url) {
                Ok(bus) => Some(bus),
                Err(e) => {
                    tracing::warn!(error = %e, "REDIS_URL unusable for cache evictions; the cache is off");
                    None
                }
            },
            (CacheMode::Auto, ..) => None,
        };
        Self {
            inner: bus.map(|bus| Arc::new(Inner::new(&config.cache, bus))),
        }
    }

    /// A cache that is always off.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Start listening for other instances' evictions (a no-op when off).
    pub fn start(&self) {
        if let Some(inner) = &self.inner {
            let weak = Arc::downgrade(inner);
            inner.bus.clone().subscribe(move |event| {
                if let Some(inner) = weak.upgrade() {
                    inner.heard(event);
                }
            });
        }
    }

    fn live(&self) -> Option<&Inner> {
        self.inner
            .as_deref()
            .filter(|i| i.live.load(Ordering::Acquire))
    }

    /// The epoch to hand to [`fill`](Self::fill) for a read that starts now.
    pub fn epoch(&self) -> Epoch {
        self.inner
            .as_ref()
            .map_or(0, |i| i.epoch.load(Ordering::Acquire))
    }

    pub fn session(&self, id: Uuid) -> Option<Arc<SessionFacts>> {
        self.live()?.sessions.get(&id)
    }

    pub fn user(&self, id: Uuid) -> Option<SharedUser> {
        self.live()?.users.get(&id)
    }

    /// Remember what a database read that started at `epoch` found, unless something was
    /// evicted since.
    pub fn fill(&self, epoch: Epoch, session_id: Uuid, session: SessionFacts, user: &SharedUser) {
        let Some(inner) = self.live() else { return };
        if inner.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        inner.sessions.insert(session_id, Arc::new(session));
        inner.remember_user(user);
    }

    /// Remember a user view read from the database at `epoch` (a refresh's), under the same rule
    /// as [`fill`](Self::fill).
    pub fn fill_user(&self, epoch: Epoch, user: &SharedUser) {
        let Some(inner) = self.live() else { return };
        if inner.epoch.load(Ordering::Acquire) == epoch {
            inner.remember_user(user);
        }
    }

    /// A session was touched: keep the cached `last_used_at` in step, under the same rule as
    /// [`fill`](Self::fill) (a session evicted since `epoch` is not put back).
    pub fn touched(&self, epoch: Epoch, session_id: Uuid, facts: &SessionFacts, at: DateTime<Utc>) {
        let Some(inner) = self.live() else { return };
        if inner.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let touched = SessionFacts {
            last_used_at: at,
            ..facts.clone()
        };
        inner.sessions.insert(session_id, Arc::new(touched));
    }

    /// Forget what `eviction` names here, then tell every other instance. Call after the change
    /// has committed.
    pub async fn evict(&self, eviction: Eviction) {
        let Some(inner) = &self.inner else { return };
        inner.apply(eviction);
        if matches!(inner.bus, Bus::Local) {
            return;
        }
        let tag = inner.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut echoes) = inner.echoes.lock() {
            echoes.insert(tag, tx);
        }
        inner.bus.publish(eviction, tag).await;
        // Answer once the channel has carried the eviction back (so it has gone out to every
        // instance), or after a short wait when it is slow or down.
        let _ = tokio::time::timeout(ECHO_WAIT, rx).await;
        if let Ok(mut echoes) = inner.echoes.lock() {
            echoes.remove(&tag);
        }
    }

    /// Entries held (for tests and the benchmark; moka counts lazily, so pending work is run first).
    pub fn len(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| {
            i.sessions.run_pending_tasks();
            i.users.run_pending_tasks();
            i.sessions.entry_count() + i.users.entry_count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Off, or subscribed to its channel: nothing about the cache is still starting.
    pub fn started(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|i| i.live.load(Ordering::Acquire))
    }

    /// Whether calls are being answered from memory right now.
    pub fn serving(&self) -> bool {
        self.live().is_some()
    }
}

impl Inner {
    fn new(config: &CacheConfig, bus: Bus) -> Self {
        Self {
            sessions: Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.ttl)
                .support_invalidation_closures()
                .build(),
            users: Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.ttl)
                .build(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            bus,
            echoes: Default::default(),
            // Random, so two instances' tags do not meet.
            next_tag: AtomicU64::new(rand::random()),
        }
    }

    /// Views over [`MAX_VIEW_BYTES`] (big metadata) are not kept.
    fn remember_user(&self, user: &SharedUser) {
        if user.json_len() <= MAX_VIEW_BYTES {
            self.users.insert(user.id, user.clone());
        }
    }

    fn apply(&self, eviction: Eviction) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match eviction {
            Eviction::Session(id) => self.sessions.invalidate(&id),
            Eviction::User(id) => self.users.invalidate(&id),
            Eviction::UserSessions(id) => {
                self.users.invalidate(&id);
                // Rare (logout everywhere, password change, disable, delete): a scan is fine.
                if let Err(e) = self
                    .sessions
                    .invalidate_entries_if(move |_, s| s.user_id == id)
                {
                    tracing::error!(error = %e, "could not evict a user's sessions; flushing");
                    self.sessions.invalidate_all();
                }
            }
        }
    }

    fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.sessions.invalidate_all();
        self.users.invalidate_all();
    }

    fn heard(&self, event: BusEvent) {
        match event {
            BusEvent::Evict(e, tag) => {
                self.apply(e);
                let echo = self.echoes.lock().ok().and_then(|mut m| m.remove(&tag));
                if let Some(tx) = echo {
                    let _ = tx.send(());
                }
            }
            // Anything could have been missed while the channel was away: start empty, and
            // read the database until every later eviction is sure to arrive.
            BusEvent::Down => {
                self.live.store(false, Ordering::Release);
                self.flush();
            }
            BusEvent::Up => {
                self.flush();
                self.live.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::views::UserView;

    fn cache(max_entries: u64) -> Principals {
        let config = CacheConfig {
            mode: CacheMode::SingleInstance,
            max_entries,
            ttl: Duration::from_secs(60),
        };
        let p = Principals {
            inner: Some(Arc::new(Inner::new(&config, Bus::Local))),
        };
        p.start();
        p
    }

    fn view(id: Uuid) -> SharedUser {
        let now = crate::store::now();
        SharedUser::new(UserView {
            id,
            email: "a@example.com".into(),
            name: None,
            roles: vec!["user".into()],
            active: true,
            email_verified: false,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            metadata: serde_json::json!({}),
        })
    }

    fn facts(user_id: Uuid) -> SessionFacts {
        let now = crate::store::now();
        SessionFacts {
            user_id,
            aal: "aal1".into(),
            expires_at: now + chrono::Duration::hours(1),
            last_used_at: now,
        }
    }

    #[test]
    fn stays_within_its_bound_under_100_000_sessions() {
        let p = cache(10_000);
        let user = view(Uuid::now_v7());
        for _ in 0..100_000 {
            p.fill(p.epoch(), Uuid::now_v7(), facts(user.id), &user);
        }
        assert!(p.len() <= 10_000 + 1, "{}", p.len());
        assert!(p.len() > 1_000, "it does cache: {}", p.len());
    }

    #[test]
    fn a_read_older_than_an_eviction_is_not_cached() {
        let p = cache(100);
        let (sid, user) = (Uuid::now_v7(), view(Uuid::now_v7()));
        let before = p.epoch();
        futures_executor(p.evict(Eviction::Session(sid)));
        p.fill(before, sid, facts(user.id), &user);
        assert!(p.session(sid).is_none());
        p.fill(p.epoch(), sid, facts(user.id), &user);
        assert!(p.session(sid).is_some());
    }

    #[test]
    fn evictions_reach_exactly_what_they_name() {
        let p = cache(100);
        let (ada, bob) = (view(Uuid::now_v7()), view(Uuid::now_v7()));
        let (a1, a2, b1) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        for (sid, user) in [(a1, &ada), (a2, &ada), (b1, &bob)] {
            p.fill(p.epoch(), sid, facts(user.id), user);
        }
        futures_executor(p.evict(Eviction::Session(a1)));
        assert!(p.session(a1).is_none() && p.session(a2).is_some());
        futures_executor(p.evict(Eviction::User(ada.id)));
        assert!(p.user(ada.id).is_none() && p.session(a2).is_some());
        futures_executor(p.evict(Eviction::UserSessions(ada.id)));
        assert!(p.session(a2).is_none());
        assert!(p.session(b1).is_some() && p.user(bob.id).is_some());
    }

    #[test]
    fn a_dropped_channel_flushes_and_bypasses_until_it_is_back() {
        let p = cache(100);
        let (sid, user) = (Uuid::now_v7(), view(Uuid::now_v7()));
        p.fill(p.epoch(), sid, facts(user.id), &user);
        let inner = p.inner.clone().unwrap();
        inner.heard(BusEvent::Down);
        assert!(!p.serving());
        assert!(p.session(sid).is_none());
        p.fill(p.epoch(), sid, facts(user.id), &user);
        assert!(p.session(sid).is_none(), "nothing is cached while down");
        inner.heard(BusEvent::Up);
        assert!(p.serving());
        assert!(p.session(sid).is_none(), "flushed again when back");
    }

    #[test]
    fn off_caches_nothing() {
        let p = Principals::off();
        let (sid, user) = (Uuid::now_v7(), view(Uuid::now_v7()));
        p.fill(p.epoch(), sid, facts(user.id), &user);
        assert!(p.session(sid).is_none() && !p.serving());
    }

    /// Run an eviction to completion (local buses never wait).
    fn futures_executor(f: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f);
    }
}
