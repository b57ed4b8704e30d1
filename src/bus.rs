//! The eviction bus: tells every instance that a session or user changed, over PostgreSQL LISTEN/NOTIFY or Redis pub/sub, and tells this instance when it may have missed a message.

use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::store;

/// What changed, so cached principals built on it must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// One session ended.
    Session(Uuid),
    /// The user's view changed (name, roles, MFA, verification, last login).
    User(Uuid),
    /// Every session of the user ended, and its view changed.
    UserSessions(Uuid),
}

impl Eviction {
    /// `<kind>:<id>:<tag>`: the tag lets the sender recognise its own message coming back.
    fn encode(self, tag: u64) -> String {
        match self {
            Eviction::Session(id) => format!("s:{id}:{tag}"),
            Eviction::User(id) => format!("u:{id}:{tag}"),
            Eviction::UserSessions(id) => format!("a:{id}:{tag}"),
        }
    }

    fn decode(payload: &str) -> Option<(Self, u64)> {
        let mut parts = payload.splitn(3, ':');
        let (kind, id, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let id = Uuid::parse_str(id).ok()?;
        let tag = tag.parse().ok()?;
        let eviction = match kind {
            "s" => Eviction::Session(id),
            "u" => Eviction::User(id),
            "a" => Eviction::UserSessions(id),
            _ => return None,
        };
        Some((eviction, tag))
    }
}

/// What the subscriber reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusEvent {
    /// Subscribed: from now on every eviction arrives.
    Up,
    /// The subscription dropped: messages may have been missed until the next `Up`.
    Down,
    /// An eviction, with the tag its sender gave it.
    Evict(Eviction, u64),
}

impl Bus {
    /// A bus over Redis at `url`.
    pub fn redis(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Bus::Redis {
            client: redis::Client::open(url)?,
            publisher: Default::default(),
        })
    }
}

/// Where evictions travel.
#[derive(Clone)]
pub enum Bus {
    /// This instance only (a declared single instance).
    Local,
    Postgres {
        db: DatabaseConnection,
        /// The listener connects on its own, outside the pool.
        url: String,
    },
    Redis {
        client: redis::Client,
        /// The publishing connection, made on first use and kept (it reconnects by itself).
        publisher: std::sync::Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    },
}

const REDIS_CHANNEL: &str = "gatehouse:evict";
/// How long to wait before subscribing again after the channel dropped.
const RETRY: Duration = Duration::from_millis(200);

impl Bus {
    /// Tell every other instance (`tag` comes back with the message, so the sender can wait for
    /// it). A failure is logged: the sender has evicted locally, and the others' entries live
    /// at most the cache's TTL.
    pub async fn publish(&self, eviction: Eviction, tag: u64) {
        let payload = eviction.encode(tag);
        let result = match self {
            Bus::Local => Ok(()),
            Bus::Postgres { db, .. } => store::notify::publish(db, &payload)
                .await
                .map_err(|e| e.to_string()),
            Bus::Redis { client, publisher } => {
                let conn = publisher
                    .get_or_try_init(|| redis::aio::ConnectionManager::new(client.clone()))
                    .await;
                match conn {
                    Ok(conn) => redis::cmd("PUBLISH")
                        .arg(REDIS_CHANNEL)
                        .arg(&payload)
                        .query_async::<i64>(&mut conn.clone())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not publish a cache eviction");
        }
    }

    /// Run the subscriber for the life of the process, reporting to `sink`: `Up` once
    /// subscribed, every eviction, `Down` as soon as the subscription drops (then it subscribes
    /// again). `Local` is up at once and stays up.
    pub fn subscribe(self, sink: impl Fn(BusEvent) + Send + Sync + 'static) {
        match self {
            Bus::Local => sink(BusEvent::Up),
            Bus::Postgres { url, .. } => {
                tokio::spawn(async move {
                    loop {
                        match store::notify::listen(&url).await {
                            Ok(mut listener) => {
                                sink(BusEvent::Up);
                                // `Ok(None)`: the connection was lost.
                                while let Ok(Some(n)) = listener.try_recv().await {
                                    if let Some((e, tag)) = Eviction::decode(n.payload()) {
                                        sink(BusEvent::Evict(e, tag));
                                    }
                                }
                                sink(BusEvent::Down);
                                tracing::warn!(
                                    "eviction listener lost; the cache is bypassed until it is back"
                                );
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "eviction listener not connected")
                            }
                        }
                        tokio::time::sleep(RETRY).await;
                    }
                });
            }
            Bus::Redis { client, .. } => {
                tokio::spawn(async move {
                    loop {
                        match client.get_async_pubsub().await {
                            Ok(mut pubsub) => {
                                if let Err(e) = pubsub.subscribe(REDIS_CHANNEL).await {
                                    tracing::debug!(error = %e, "eviction subscription failed");
                                } else {
                                    sink(BusEvent::Up);
                                    let mut stream = pubsub.into_on_message();
                                    while let Some(msg) = stream.next().await {
                                        let payload: String = msg.get_payload().unwrap_or_default();
                                        if let Some((e, tag)) = Eviction::decode(&payload) {
                                            sink(BusEvent::Evict(e, tag));
                                        }
                                    }
                                    sink(BusEvent::Down);
                                    tracing::warn!(
                                        "eviction subscription lost; the cache is bypassed until it is back"
                                    );
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "eviction subscriber not connected")
                            }
                        }
                        tokio::time::sleep(RETRY).await;
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evictions_round_trip_and_junk_is_ignored() {
        let id = Uuid::now_v7();
        for e in [
            Eviction::Session(id),
            Eviction::User(id),
            Eviction::UserSessions(id),
        ] {
            assert_eq!(Eviction::decode(&e.encode(7)), Some((e, 7)));
        }
        for junk in [
            "",
            "s",
            "x:1",
            "s:not-a-uuid:1",
            "q:00000000-0000-0000-0000-000000000000:1",
            "s:00000000-0000-0000-0000-000000000000",
            "s:00000000-0000-0000-0000-000000000000:x",
        ] {
            assert_eq!(Eviction::decode(junk), None, "{junk}");
        }
    }
}
