//! The schema on every backend: each migration goes up and down cleanly, every table takes and
//! returns a row exactly (UUIDs, JSON, microsecond instants), and the foreign keys cascade or set null as declared.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    IntoActiveModel, ModelTrait, QueryResult, Statement,
};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestDb;
use gatehouse::domain::roles::Role;
use gatehouse::store::entities::*;
use gatehouse::store::migrations::{BUILTIN_ROLES, Migrator};

async fn raw(db: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        }
        DatabaseBackend::Postgres => {
            "SELECT tablename::text AS t FROM pg_tables WHERE schemaname='public'"
        }
        _ => {
            "SELECT CAST(table_name AS CHAR) AS t FROM information_schema.tables WHERE table_schema=DATABASE()"
        }
    };
    let mut names: Vec<String> = raw(db, sql)
        .await
        .iter()
        .map(|r| r.try_get::<String>("", "t").expect("name"))
        .collect();
    names.sort();
    names
}

/// The declared type of `column` in every table that has it, so a helper cannot silently
/// fall back to `timestamp` (2038, no fraction) on MySQL or `timestamp` without zone on PG.
async fn column_types(db: &DatabaseConnection, column: &str) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Postgres => format!(
            "SELECT data_type::text AS t FROM information_schema.columns \
             WHERE table_schema='public' AND column_name='{column}'"
        ),
        DatabaseBackend::MySql => format!(
            "SELECT CAST(column_type AS CHAR) AS t FROM information_schema.columns \
             WHERE table_schema=DATABASE() AND column_name='{column}'"
        ),
        _ => format!(
            "SELECT p.type AS t FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type='table' AND p.name='{column}'"
        ),
    };
    raw(db, &sql)
        .await
        .iter()
        .map(|r| r.try_get::<String>("", "t").expect("type").to_lowercase())
        .collect()
}

/// An instant with a full microsecond fraction, past 2038 where the driver allows it: on
/// MySQL/MariaDB sqlx sends `DateTime<Utc>` as a TIMESTAMP parameter, which MariaDB turns
/// into NULL beyond 2038-01-19 although the column is DATETIME(6) (see
/// `mariadb_drops_far_future_utc_parameters`).
fn instant(backend: DatabaseBackend, offset_secs: i64) -> DateTime<Utc> {
    let year = if backend == DatabaseBackend::MySql {
        2037
    } else {
        2040
    };
    Utc.with_ymd_and_hms(year, 2, 28, 23, 59, 58)
        .single()
        .expect("valid date")
        + Duration::microseconds(123_456)
        + Duration::seconds(offset_secs)
}

/// Insert `model` through its entity and read it back by primary key: it must be unchanged.
macro_rules! round_trip {
    ($db:expr, $module:ident, $model:expr, $($pk:expr),+) => {{
        let model: $module::Model = $model;
        model.clone().into_active_model().reset_all().insert($db).await
            .unwrap_or_else(|e| panic!("insert {}: {e}", stringify!($module)));
        let back = $module::Entity::find_by_id(($($pk),+)).one($db).await
            .unwrap_or_else(|e| panic!("read {}: {e}", stringify!($module)))
            .unwrap_or_else(|| panic!("{} row missing", stringify!($module)));
        assert_eq!(back, model, "{} round trip", stringify!($module));
        back
    }};
}

/// How many rows the table of entity module `$module` holds.
macro_rules! rows {
    ($db:expr, $module:ident) => {
        $module::Entity::find().all($db).await.expect("q").len()
    };
}

/// Assert that each of these tables is empty (their rows went with the user they belong to).
macro_rules! assert_emptied {
    ($db:expr, $($module:ident),+) => {
        $(assert_eq!(rows!($db, $module), 0, "{} should cascade", stringify!($module));)+
    };
}

async fn exercise(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let instant = |offset_secs| instant(backend, offset_secs);
    Migrator::up(db, None).await.expect("up");

    let expected: Vec<String> = {
        let mut t = vec![
            "api_keys",
            "audit_log",
            "billing_records",
            "integrations",
            "login_throttles",
            "oauth_identities",
            "oauth_states",
            "oidc_clients",
            "oidc_codes",
            "oidc_consents",
            "one_time_tokens",
            "passkeys",
            "recovery_codes",
            "roles",
            "seaql_migrations",
            "sessions",
            "usage_records",
            "user_roles",
            "users",
            "webauthn_ceremonies",
        ];
        t.sort();
        t.into_iter().map(String::from).collect()
    };
    assert_eq!(tables(db).await, expected);

    let want = match backend {
        DatabaseBackend::Postgres => "timestamp with time zone",
        DatabaseBackend::MySql => "datetime(6)",
        _ => "timestamp_with_timezone_text",
    };
    for (column, count) in [
        ("created_at", 15),
        ("expires_at", 6),
        ("granted_at", 2),
        ("at", 1),
    ] {
        let types = column_types(db, column).await;
        assert_eq!(types.len(), count, "{column}: {types:?}");
        assert!(
            types.iter().all(|t| t == want),
            "{backend:?} {column}: {types:?}"
        );
    }

    // After every migration the catalogue is exactly the built-in roles as the code defines them.
    let roles = roles::Entity::find().all(db).await.expect("roles");
    assert_eq!(roles.len(), Role::ALL.len());
    for role in Role::ALL {
        let r = roles
            .iter()
            .find(|r| r.name == role.name())
            .expect("seeded");
        assert_eq!(
            (r.rank, r.description.as_str(), r.builtin),
            (role.rank(), role.description(), true)
        );
        assert_eq!(r.permissions, json!(role.permissions()));
    }

    let user_id = Uuid::now_v7();
    let key_id = Uuid::now_v7();
    let user = round_trip!(
        db,
        users,
        users::Model {
            id: user_id,
            email: "Ada@Example.com".into(),
            email_lower: "ada@example.com".into(),
            password_hash: Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA".into()),
            name: Some("Ada Lovelace ✓".into()),
            active: true,
            deleted_at: None,
            email_verified: true,
            email_verified_at: Some(instant(1)),
            failed_logins: 2,
            locked_until: Some(instant(2)),
            last_login_at: None,
            mfa_enabled: false,
            mfa_secret: Some("v1.nonce.ciphertext".into()),
            mfa_pending_secret: None,
            mfa_last_step: Some(i64::MAX / 3),
            metadata: json!({"lang": "en", "n": 1.5, "tags": ["a", "b"], "nested": {"ok": true, "none": null}}),
            created_at: instant(0),
            updated_at: instant(3),
        },
        user_id
    );
    round_trip!(
        db,
        roles,
        roles::Model {
            name: "auditor".into(),
            rank: 50,
            description: "Reads the audit log".into(),
            permissions: json!(["audit:read"]),
            builtin: false,
            created_at: instant(0),
        },
        "auditor".to_string()
    );
    round_trip!(
        db,
        user_roles,
        user_roles::Model {
            user_id,
            role: "auditor".into(),
            granted_at: instant(4),
            granted_by: Some(Uuid::now_v7()),
        },
        user_id,
        "auditor".to_string()
    );
    let session_id = Uuid::now_v7();
    round_trip!(
        db,
        sessions,
        sessions::Model {
            id: session_id,
            user_id,
            refresh_generation: 7,
            salt: "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into(),
            ip_address: Some("2001:db8::1".into()),
            user_agent: Some("curl/8".into()),
            aal: "aal2".into(),
            created_at: instant(0),
            last_used_at: instant(5),
            refreshed_at: Some(instant(5)),
            expires_at: instant(86_400),
            revoked_at: None,
            revoked_reason: None,
            oidc_client_id: Some(Uuid::now_v7()),
            oidc_scope: Some("openid email".into()),
            auth_time: Some(instant(1)),
        },
        session_id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        one_time_tokens,
        one_time_tokens::Model {
            id,
            user_id,
            purpose: "password_reset".into(),
            token_hash: "a".repeat(64),
            created_at: instant(0),
            expires_at: instant(3600),
            used_at: Some(instant(60)),
        },
        id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        recovery_codes,
        recovery_codes::Model {
            id,
            user_id,
            code_hash: "b".repeat(64),
            created_at: instant(0),
            used_at: None,
        },
        id
    );
    round_trip!(
        db,
        api_keys,
        api_keys::Model {
            id: key_id,
            name: "billing exporter".into(),
            key_prefix: "gh_live_abcd".into(),
            key_hash: "c".repeat(64),
            scopes: json!(["usage:write", "billing:read"]),
            created_by: Some(user_id),
            created_at: instant(0),
            last_used_at: Some(instant(10)),
            expires_at: Some(instant(1_000_000)),
            revoked_at: None,
        },
        key_id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        integrations,
        integrations::Model {
            id,
            user_id,
            service: "openai".into(),
            label: None,
            key_ciphertext: "v1.".to_string() + &"x".repeat(1000),
            key_hint: "…wxyz".into(),
            status: "active".into(),
            created_at: instant(0),
            updated_at: instant(1),
        },
        id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        oauth_identities,
        oauth_identities::Model {
            id,
            user_id,
            provider: "github".into(),
            subject: "1234567".into(),
            email: Some("ada@example.com".into()),
            created_at: instant(0),
        },
        id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        passkeys,
        passkeys::Model {
            id,
            user_id,
            credential_hash: "c".repeat(64),
            name: "Laptop — é".into(),
            credential: "{\"cred\":\"".to_string() + &"x".repeat(2000) + "\"}",
            created_at: instant(0),
            last_used_at: Some(instant(1)),
        },
        id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        webauthn_ceremonies,
        webauthn_ceremonies::Model {
            id,
            ceremony_hash: "d".repeat(64),
            kind: "register".into(),
            user_id: Some(user_id),
            state: "{}".into(),
            created_at: instant(0),
            expires_at: instant(300),
        },
        id
    );
    let usage_id = Uuid::now_v7();
    round_trip!(
        db,
        usage_records,
        usage_records::Model {
            id: usage_id,
            user_id,
            api_key_id: Some(key_id),
            service: "llm".into(),
            model: "gpt-x".into(),
            request_type: "chat".into(),
            tokens_used: 5_000_000_000,
            cost_micros: 1_234_567,
            created_at: instant(0),
            occurred_at: Some(instant(0)),
            idempotency_key: Some("retry-1".into()),
        },
        usage_id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        billing_records,
        billing_records::Model {
            id,
            user_id,
            period_start: instant(-86_400 * 30),
            period_end: instant(0),
            amount_micros: 1_234_567,
            currency: "EUR".into(),
            status: "open".into(),
            created_at: instant(0),
        },
        id
    );
    let id = Uuid::now_v7();
    round_trip!(
        db,
        audit_log,
        audit_log::Model {
            id,
            at: instant(0),
            event: "user.login".into(),
            user_id: Some(user_id),
            actor_id: None,
            ip_address: Some("203.0.113.9".into()),
            user_agent: None,
            detail: json!({"aal": "aal1", "attempt": 1}),
        },
        id
    );

    // Relations reach the related rows.
    let granted = user.find_related(roles::Entity).all(db).await.expect("via");
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].name, "auditor");

    // Deleting the key keeps its usage, unattributed; deleting the user removes everything
    // of theirs except the audit log.
    api_keys::Entity::delete_by_id(key_id)
        .exec(db)
        .await
        .expect("delete key");
    let usage = usage_records::Entity::find_by_id(usage_id)
        .one(db)
        .await
        .expect("usage");
    assert_eq!(usage.expect("usage kept").api_key_id, None);
    users::Entity::delete_by_id(user_id)
        .exec(db)
        .await
        .expect("delete user");
    assert_emptied!(
        db,
        user_roles,
        sessions,
        one_time_tokens,
        recovery_codes,
        integrations,
        oauth_identities,
        passkeys,
        webauthn_ceremonies,
        usage_records,
        billing_records
    );
    assert_eq!(rows!(db, audit_log), 1);

    // Everything down, then up one migration at a time, then down one at a time.
    Migrator::down(db, None).await.expect("down");
    assert_eq!(tables(db).await, vec!["seaql_migrations".to_string()]);
    let steps = Migrator::migrations().len();
    for _ in 0..steps {
        Migrator::up(db, Some(1)).await.expect("up one");
    }
    assert_eq!(tables(db).await, expected);
    assert_eq!(rows!(db, roles), BUILTIN_ROLES.len());
    for _ in 0..steps {
        Migrator::down(db, Some(1)).await.expect("down one");
    }
    assert_eq!(tables(db).await, vec!["seaql_migrations".to_string()]);
    Migrator::up(db, None).await.expect("up again");
    assert_eq!(tables(db).await, expected);
}

async fn schema_round_trips_and_keys_hold(db: TestDb) {
    let conn = db.connect().await;
    exercise(&conn).await;
    conn.close().await.expect("close");
}

/// Instances started together against an empty database (each runs `serve`'s upgrade) all
/// start: one applies every migration while the others wait for the schema lock and then find
/// nothing pending. Without the lock they race to create the same tables and fail.
async fn instances_starting_together_migrate_once(db: TestDb) {
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(db.connect().await);
    }
    let applied: Vec<usize> = futures_util::future::join_all(
        instances
            .iter()
            .map(|conn| gatehouse::store::schema::upgrade(conn, None)),
    )
    .await
    .into_iter()
    .map(|r| r.expect("every instance starts"))
    .collect();
    let all = gatehouse::store::schema::names().len();
    assert_eq!(applied.iter().sum::<usize>(), all, "{applied:?}");
    assert!(
        applied.contains(&all),
        "one instance did all of it: {applied:?}"
    );
    let status = gatehouse::store::schema::status(&instances[0])
        .await
        .unwrap();
    assert!(status.iter().all(|r| r.applied), "{status:?}");
    // Each migration is recorded once.
    let recorded = raw(&instances[0], "SELECT version FROM seaql_migrations").await;
    assert_eq!(recorded.len(), all);
    for conn in instances {
        conn.close().await.expect("close");
    }
}

per_backend!(
    schema_round_trips_and_keys_hold,
    instances_starting_together_migrate_once
);
