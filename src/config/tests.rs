//! The config's behaviour case by case: where the database URL comes from, that each error names its variable, that secrets never print.

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))
}

#[test]
fn defaults_are_sqlite_in_data_dir() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.database.backend, Backend::Sqlite);
    assert_eq!(
        c.database.sqlite_path,
        Some(PathBuf::from("./data/gatehouse.db"))
    );
    assert_eq!(c.database.max_connections(), 30);
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(
        c.dev_jwt_key_path(),
        Some(PathBuf::from("./data/jwt_secret"))
    );
}

#[test]
fn database_url_wins_over_db_parts() {
    let c = cfg(&[
        ("DATABASE_URL", "postgres://u:p@db:5432/gh"),
        ("DB_TYPE", "mysql"),
        ("DB_DATABASE", "other"),
    ])
    .unwrap();
    assert_eq!(c.database.backend, Backend::Postgres);
    assert_eq!(c.database.masked_url(), "postgres://u:********@db:5432/gh");
}

#[test]
fn db_parts_build_a_url() {
    let c = cfg(&[
        ("DB_TYPE", "mysql"),
        ("DB_HOST", "db.internal"),
        ("DB_USERNAME", "gate"),
        ("DB_PASSWORD", "p@ss/word"),
        ("DB_DATABASE", "gatehouse"),
    ])
    .unwrap();
    assert_eq!(c.database.backend, Backend::MySql);
    assert_eq!(
        c.database.url.expose(),
        "mysql://gate:p%40ss%2Fword@db.internal:3306/gatehouse"
    );
    let c = cfg(&[("DB_TYPE", "sqlite"), ("DB_PATH", "/var/lib/gh/x.db")]).unwrap();
    assert_eq!(
        c.database.sqlite_path,
        Some(PathBuf::from("/var/lib/gh/x.db"))
    );
}

#[test]
fn every_error_names_its_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DB_TYPE", "oracle")], "DB_TYPE"),
        (&[("DB_TYPE", "postgres")], "DB_DATABASE"),
        (&[("DATABASE_URL", "redis://x/1")], "DATABASE_URL"),
        (&[("DB_POOL_SIZE", "many")], "DB_POOL_SIZE"),
        (&[("DB_POOL_SIZE", "0")], "DB_POOL_SIZE"),
        (&[("DB_CONNECT_TIMEOUT", "-1")], "DB_CONNECT_TIMEOUT"),
        (&[("GATEHOUSE_BIND", "nowhere")], "GATEHOUSE_BIND"),
        (&[("JWT_SECRET", "short")], "JWT_SECRET"),
        (&[("JWT_ALGORITHM", "none")], "JWT_ALGORITHM"),
        (&[("JWT_ALGORITHM", "EdDSA")], "JWT_PRIVATE_KEY_FILE"),
        (
            &[("AUTH_AUTO_LOGIN_ON_REGISTER", "maybe")],
            "AUTH_AUTO_LOGIN_ON_REGISTER",
        ),
        (&[("RATE_LIMIT_BACKEND", "redis")], "REDIS_URL"),
        (
            &[("TRUSTED_PROXIES", "10.0.0.0/8,bogus")],
            "TRUSTED_PROXIES",
        ),
        (
            &[("ENCRYPTION_MASTER_KEY", "AAAA")],
            "ENCRYPTION_MASTER_KEY",
        ),
        (&[("ADMIN_USERNAME", "root")], "ADMIN_PASSWORD"),
        (
            &[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD", "x")],
            "ADMIN_USERNAME",
        ),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("PASSWORD_HASH", "md5")], "PASSWORD_HASH"),
        (&[("SMTP_URL", "http://mail")], "SMTP_URL"),
    ];
    for (pairs, var) in cases {
        let err = cfg(pairs).expect_err(var);
        assert_eq!(err.var, *var, "{pairs:?} -> {err}");
        assert!(err.to_string().contains(var));
    }
}

#[test]
fn print_config_masks_every_secret() {
    let c = cfg(&[
        ("DATABASE_URL", "postgres://gate:hunter2hunter2@db/gh"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef-secret"),
        ("SMTP_URL", "smtp://mailer:mailpass@smtp:25"),
        ("REDIS_URL", "redis://:redispass@r:6379"),
        ("ADMIN_USERNAME", "root@example.com"),
        ("ADMIN_PASSWORD", "AdminPass!1"),
        (
            "ENCRYPTION_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
    ])
    .unwrap();
    let out = c.render_masked();
    for secret in [
        "hunter2",
        "0123456789abcdef",
        "mailpass",
        "redispass",
        "AdminPass",
        "MDEy",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert!(out.contains("ADMIN_USERNAME=root@example.com"));
    assert!(out.contains("JWT_SECRET=********"));
}

#[test]
fn rate_limit_accepts_one_or_two_numbers() {
    let c = cfg(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "5")]).unwrap();
    assert_eq!(
        (
            c.rate_limit.login_per_minute_ip_email,
            c.rate_limit.login_per_minute_ip
        ),
        (5, 30)
    );
    let c = cfg(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "5,100")]).unwrap();
    assert_eq!(c.rate_limit.login_per_minute_ip, 100);
}
