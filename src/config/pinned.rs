//! Pins `--print-config` output and configuration error messages exactly, so restructuring the config module cannot change what operators see.

use super::*;

fn render(pairs: &[(&str, &str)]) -> String {
    Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))
        .unwrap()
        .render_masked()
}

/// The defaults, with the hashing threads this machine gets (one per core, 32 queued each).
fn defaults() -> String {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    DEFAULTS
        .replace("@CORES@", &cores.to_string())
        .replace("@CORES_X32@", &(cores * 32).to_string())
}

/// The defaults with some variables' values replaced (each of them must be printed).
fn defaults_with(changes: &[(&str, &str)]) -> String {
    let mut replaced = 0;
    let out = defaults()
        .lines()
        .map(|line| {
            let var = line.split_once('=').map_or(line, |(var, _)| var);
            match changes.iter().find(|(v, _)| *v == var) {
                Some((_, value)) => {
                    replaced += 1;
                    format!("{var}={value}\n")
                }
                None => format!("{line}\n"),
            }
        })
        .collect();
    assert_eq!(replaced, changes.len(), "{changes:?}");
    out
}

fn error(pairs: &[(&str, &str)]) -> String {
    Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))
        .expect_err("should be refused")
        .to_string()
}

const POSTGRES_EVERYTHING_VARS: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://gate:hunter2hunter2@db.internal:5433/gh?sslmode=require",
    ),
    ("DB_POOL_SIZE", "4"),
    ("DB_MAX_OVERFLOW", "0"),
    ("DB_POOL_RECYCLE", "600"),
    ("DB_CONNECT_TIMEOUT", "10"),
    ("GATEHOUSE_BIND", "0.0.0.0:9000"),
    ("GATEHOUSE_PUBLIC_URL", "https://auth.example.com/base"),
    ("GATEHOUSE_REQUEST_TIMEOUT", "60"),
    (
        "CORS_ALLOWED_ORIGINS",
        " https://app.example.com, https://admin.example.com ,",
    ),
    ("JWT_SECRET", "0123456789abcdef0123456789abcdef-secret"),
    (
        "JWT_PREVIOUS_SECRETS",
        "previous-secret-previous-secret-00001, previous-secret-previous-secret-00002",
    ),
    // Relative to the package root, where `cargo test` runs.
    ("JWT_PREVIOUS_KEY_FILES", "Cargo.toml, Cargo.lock"),
    ("JWT_ACCESS_TOKEN_EXPIRES", "300"),
    ("JWT_REFRESH_TOKEN_EXPIRES", "86400"),
    ("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0"),
    ("AUTH_MAX_LOGIN_ATTEMPTS", "3"),
    ("AUTH_LOCKOUT_MINUTES", "60"),
    ("AUTH_AUTO_LOGIN_ON_REGISTER", "yes"),
    ("AUTH_REQUIRE_EMAIL_VERIFICATION", "ON"),
    ("PASSWORD_MIN_LENGTH", "12"),
    ("PASSWORD_REQUIRE_CLASSES", "false"),
    ("PASSWORD_HASH", "ARGON2ID"),
    ("PASSWORD_ARGON2_MEMORY_KIB", "65536"),
    ("PASSWORD_ARGON2_ITERATIONS", "3"),
    ("PASSWORD_ARGON2_PARALLELISM", "2"),
    ("PASSWORD_HASH_WORKERS", "3"),
    ("RATE_LIMIT_BACKEND", "Redis"),
    ("REDIS_URL", "redis://:redispass@r:6379/0"),
    ("RATE_LIMIT_LOGIN_PER_MINUTE", "5, 100"),
    ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1"),
    ("SMTP_URL", "smtps://mailer:mailpass@smtp.example.com:465"),
    ("MAIL_OUTBOX_DIR", "/var/spool/gh"),
    ("MAIL_FROM", "Example <auth@example.com>"),
    (
        "ENCRYPTION_MASTER_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    ("OAUTH_ENABLED", "true"),
    ("GOOGLE_CLIENT_ID", "g-id"),
    ("GOOGLE_CLIENT_SECRET", "g-secret"),
    ("GITHUB_CLIENT_ID", "gh-id"),
    ("GITHUB_CLIENT_SECRET", "gh-secret"),
    ("ADMIN_USERNAME", "root@example.com"),
    ("ADMIN_PASSWORD", "AdminPass!1"),
    ("GATEHOUSE_UI", "off"),
    ("UI_PRODUCT_NAME", "Example ID"),
    ("UI_LOGO_URL", "https://cdn.example.com/logo.svg"),
    ("UI_ACCENT_COLOR", "#0A7F3F"),
    (
        "UI_REDIRECT_ALLOWLIST",
        "https://app.example.com, http://localhost:3000/",
    ),
    ("LOG_FORMAT", "JSON"),
    ("RUST_LOG", "gatehouse=debug,tower_http=info"),
];

const MYSQL_PARTS_EDDSA_VARS: &[(&str, &str)] = &[
    ("DB_TYPE", "mariadb"),
    ("DB_HOST", "db.internal"),
    ("DB_PORT", "3307"),
    ("DB_USERNAME", "gate"),
    ("DB_PASSWORD", "p@ss/word"),
    ("DB_DATABASE", "gatehouse"),
    ("JWT_ALGORITHM", "eddsa"),
    // Relative to the package root, where `cargo test` runs.
    ("JWT_PRIVATE_KEY_FILE", "Cargo.toml"),
    ("RATE_LIMIT_LOGIN_PER_MINUTE", "7"),
    ("PASSWORD_HASH_WORKERS", "2"),
    ("PASSWORD_HASH_QUEUE", "5"),
    ("CORS_ALLOWED_ORIGINS", "*"),
    ("GITHUB_CLIENT_SECRET", "gh-secret"),
];

const SQLITE_PARTS_ES256_VARS: &[(&str, &str)] = &[
    ("DB_TYPE", "SQLite"),
    ("DB_PATH", "/var/lib/gh/x.db"),
    ("JWT_ALGORITHM", "ES256"),
    ("JWT_PRIVATE_KEY_FILE", "Cargo.toml"),
    ("PASSWORD_HASH_WORKERS", "1"),
];

const DEFAULTS: &str = r#"DATABASE_URL=sqlite://./data/gatehouse.db
DB_TYPE=sqlite
DB_POOL_SIZE=10
DB_MAX_OVERFLOW=20
DB_POOL_RECYCLE=3600
DB_CONNECT_TIMEOUT=5
GATEHOUSE_BIND=127.0.0.1:8080
GATEHOUSE_PUBLIC_URL=http://127.0.0.1:8080/
GATEHOUSE_REQUEST_TIMEOUT=30
CORS_ALLOWED_ORIGINS=
JWT_SECRET=(development key in ./data/jwt_secret)
JWT_ALGORITHM=HS256
JWT_PRIVATE_KEY_FILE=(unset)
JWT_PREVIOUS_SECRETS=(unset)
JWT_PREVIOUS_KEY_FILES=
JWT_ACCESS_TOKEN_EXPIRES=900
JWT_REFRESH_TOKEN_EXPIRES=604800
OIDC_SIGNING_KEY_FILE=(unset)
AUTH_REFRESH_REUSE_GRACE_SECONDS=10
AUTH_MAX_LOGIN_ATTEMPTS=5
AUTH_LOCKOUT_MINUTES=15
AUTH_AUTO_LOGIN_ON_REGISTER=false
AUTH_REQUIRE_EMAIL_VERIFICATION=false
AUTH_REGISTER_CONCEAL_EXISTING=false
AUTH_CACHE=auto
AUTH_CACHE_MAX_ENTRIES=100000
AUTH_CACHE_TTL_SECONDS=60
PASSWORD_MIN_LENGTH=8
PASSWORD_REQUIRE_CLASSES=true
PASSWORD_HASH=argon2id
PASSWORD_ARGON2_MEMORY_KIB=19456
PASSWORD_ARGON2_ITERATIONS=2
PASSWORD_ARGON2_PARALLELISM=1
PASSWORD_HASH_WORKERS=@CORES@
PASSWORD_HASH_QUEUE=@CORES_X32@
RATE_LIMIT_BACKEND=memory
REDIS_URL=(unset)
RATE_LIMIT_LOGIN_PER_MINUTE=10,60
TRUSTED_PROXIES=
SMTP_URL=(unset)
MAIL_OUTBOX_DIR=./data/outbox
MAIL_FROM=Gatehouse <no-reply@localhost>
ENCRYPTION_MASTER_KEY=(unset)
ENCRYPTION_READ_KEYS=(unset)
OAUTH_ENABLED=false
GOOGLE_CLIENT_ID=(unset)
GOOGLE_CLIENT_SECRET=(unset)
GITHUB_CLIENT_ID=(unset)
GITHUB_CLIENT_SECRET=(unset)
OAUTH_GITHUB_AUTH_URL=https://github.com/login/oauth/authorize
OAUTH_GITHUB_TOKEN_URL=https://github.com/login/oauth/access_token
OAUTH_GITHUB_API_URL=https://api.github.com/
OAUTH_PROVIDERS=
OAUTH_REDIRECT_ALLOWLIST=http://127.0.0.1:8080
ADMIN_USERNAME=(unset)
ADMIN_PASSWORD=(unset)
GATEHOUSE_UI=on
UI_PRODUCT_NAME=Gatehouse
UI_LOGO_URL=(unset)
UI_ACCENT_COLOR=#2557d6
UI_REDIRECT_ALLOWLIST=http://127.0.0.1:8080
WEBAUTHN_RP_ID=(unset)
WEBAUTHN_RP_ORIGINS=
WEBAUTHN_RP_NAME=Gatehouse
LOG_FORMAT=pretty
RUST_LOG=info
"#;

const POSTGRES_EVERYTHING: &str = r#"DATABASE_URL=postgres://gate:********@db.internal:5433/gh?sslmode=require
DB_TYPE=postgres
DB_POOL_SIZE=4
DB_MAX_OVERFLOW=0
DB_POOL_RECYCLE=600
DB_CONNECT_TIMEOUT=10
GATEHOUSE_BIND=0.0.0.0:9000
GATEHOUSE_PUBLIC_URL=https://auth.example.com/base
GATEHOUSE_REQUEST_TIMEOUT=60
CORS_ALLOWED_ORIGINS=https://app.example.com,https://admin.example.com
JWT_SECRET=********
JWT_ALGORITHM=HS256
JWT_PRIVATE_KEY_FILE=(unset)
JWT_PREVIOUS_SECRETS=********
JWT_PREVIOUS_KEY_FILES=Cargo.toml,Cargo.lock
JWT_ACCESS_TOKEN_EXPIRES=300
JWT_REFRESH_TOKEN_EXPIRES=86400
OIDC_SIGNING_KEY_FILE=(unset)
AUTH_REFRESH_REUSE_GRACE_SECONDS=0
AUTH_MAX_LOGIN_ATTEMPTS=3
AUTH_LOCKOUT_MINUTES=60
AUTH_AUTO_LOGIN_ON_REGISTER=true
AUTH_REQUIRE_EMAIL_VERIFICATION=true
AUTH_REGISTER_CONCEAL_EXISTING=false
AUTH_CACHE=auto
AUTH_CACHE_MAX_ENTRIES=100000
AUTH_CACHE_TTL_SECONDS=60
PASSWORD_MIN_LENGTH=12
PASSWORD_REQUIRE_CLASSES=false
PASSWORD_HASH=argon2id
PASSWORD_ARGON2_MEMORY_KIB=65536
PASSWORD_ARGON2_ITERATIONS=3
PASSWORD_ARGON2_PARALLELISM=2
PASSWORD_HASH_WORKERS=3
PASSWORD_HASH_QUEUE=96
RATE_LIMIT_BACKEND=redis
REDIS_URL=********
RATE_LIMIT_LOGIN_PER_MINUTE=5,100
TRUSTED_PROXIES=10.0.0.0/8,192.168.1.7/32,::1/128
SMTP_URL=********
MAIL_OUTBOX_DIR=/var/spool/gh
MAIL_FROM=Example <auth@example.com>
ENCRYPTION_MASTER_KEY=********
ENCRYPTION_READ_KEYS=(unset)
OAUTH_ENABLED=true
GOOGLE_CLIENT_ID=g-id
GOOGLE_CLIENT_SECRET=********
GITHUB_CLIENT_ID=gh-id
GITHUB_CLIENT_SECRET=********
OAUTH_GITHUB_AUTH_URL=https://github.com/login/oauth/authorize
OAUTH_GITHUB_TOKEN_URL=https://github.com/login/oauth/access_token
OAUTH_GITHUB_API_URL=https://api.github.com/
OAUTH_PROVIDERS=
OAUTH_REDIRECT_ALLOWLIST=https://auth.example.com
ADMIN_USERNAME=root@example.com
ADMIN_PASSWORD=********
GATEHOUSE_UI=off
UI_PRODUCT_NAME=Example ID
UI_LOGO_URL=https://cdn.example.com/logo.svg
UI_ACCENT_COLOR=#0a7f3f
UI_REDIRECT_ALLOWLIST=https://app.example.com,http://localhost:3000
WEBAUTHN_RP_ID=auth.example.com
WEBAUTHN_RP_ORIGINS=https://auth.example.com
WEBAUTHN_RP_NAME=Example ID
LOG_FORMAT=json
RUST_LOG=gatehouse=debug,tower_http=info
"#;

#[test]
fn print_config_defaults_on_sqlite() {
    assert_eq!(render(&[]), defaults());
}

#[test]
fn print_config_postgres_with_everything_set() {
    assert_eq!(render(POSTGRES_EVERYTHING_VARS), POSTGRES_EVERYTHING);
}

#[test]
fn print_config_mysql_from_parts_with_eddsa() {
    assert_eq!(
        render(MYSQL_PARTS_EDDSA_VARS),
        defaults_with(&[
            (
                "DATABASE_URL",
                "mysql://gate:********@db.internal:3307/gatehouse"
            ),
            ("DB_TYPE", "mysql"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("JWT_SECRET", "(unset)"),
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_PRIVATE_KEY_FILE", "Cargo.toml"),
            ("PASSWORD_HASH_WORKERS", "2"),
            ("PASSWORD_HASH_QUEUE", "5"),
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "7,42"),
            ("GITHUB_CLIENT_SECRET", "********"),
        ])
    );
}

#[test]
fn print_config_sqlite_from_parts_with_es256() {
    assert_eq!(
        render(SQLITE_PARTS_ES256_VARS),
        defaults_with(&[
            ("DATABASE_URL", "sqlite:///var/lib/gh/x.db"),
            ("JWT_SECRET", "(unset)"),
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_PRIVATE_KEY_FILE", "Cargo.toml"),
            ("PASSWORD_HASH_WORKERS", "1"),
            ("PASSWORD_HASH_QUEUE", "32"),
        ])
    );
}

#[test]
fn print_config_without_a_development_key() {
    assert_eq!(
        render(&[("DATABASE_URL", "sqlite::memory:")]),
        defaults_with(&[
            ("DATABASE_URL", "sqlite::memory:"),
            ("JWT_SECRET", "(unset)"),
        ])
    );
    assert_eq!(
        render(&[("DATABASE_URL", "postgres://db/gh")]),
        defaults_with(&[
            ("DATABASE_URL", "postgres://db/gh"),
            ("DB_TYPE", "postgres"),
            ("JWT_SECRET", "(unset)"),
        ])
    );
}

#[test]
fn error_messages() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("DB_POOL_SIZE", "many")],
            r#"configuration error: DB_POOL_SIZE: invalid value "many": invalid digit found in string"#,
        ),
        (
            &[("DB_POOL_SIZE", "99999999999")],
            "configuration error: DB_POOL_SIZE: 99999999999 is out of range (1..=10000)",
        ),
        (
            &[("DB_POOL_SIZE", "99999999999999999999")],
            r#"configuration error: DB_POOL_SIZE: invalid value "99999999999999999999": number too large to fit in target type"#,
        ),
        (
            &[("DB_POOL_SIZE", "0")],
            "configuration error: DB_POOL_SIZE: 0 is out of range (1..=10000)",
        ),
        (
            &[
                ("DB_PORT", "70000"),
                ("DB_TYPE", "postgres"),
                ("DB_DATABASE", "gh"),
            ],
            "configuration error: DB_PORT: 70000 is out of range (1..=65535)",
        ),
        (
            &[("DB_CONNECT_TIMEOUT", "-1")],
            r#"configuration error: DB_CONNECT_TIMEOUT: invalid value "-1": invalid digit found in string"#,
        ),
        (
            &[("DB_TYPE", "oracle")],
            r#"configuration error: DB_TYPE: unknown value "oracle"; expected one of sqlite, postgres, postgresql, mysql, mariadb"#,
        ),
        (
            &[("DB_TYPE", "postgres")],
            "configuration error: DB_DATABASE: required when DB_TYPE is not sqlite",
        ),
        (
            &[
                ("DB_TYPE", "mysql"),
                ("DB_HOST", "bad host"),
                ("DB_DATABASE", "gh"),
            ],
            r#"configuration error: DB_HOST: invalid host "bad host": invalid domain character"#,
        ),
        (
            &[("DATABASE_URL", "redis://x/1")],
            r#"configuration error: DATABASE_URL: unsupported scheme "redis"; expected sqlite, postgres or mysql"#,
        ),
        (
            &[("DATABASE_URL", "sqlite://")],
            "configuration error: DATABASE_URL: sqlite URL has no file path",
        ),
        (
            &[("DATABASE_URL", "not a url")],
            "configuration error: DATABASE_URL: not a URL: relative URL without a base",
        ),
        (
            &[("DATABASE_URL", "postgres:///gh")],
            "configuration error: DATABASE_URL: the URL has no host",
        ),
        (
            &[("DATABASE_URL", "postgres://db/")],
            "configuration error: DATABASE_URL: the URL names no database",
        ),
        (
            &[("GATEHOUSE_BIND", "nowhere")],
            r#"configuration error: GATEHOUSE_BIND: invalid value "nowhere": invalid socket address syntax"#,
        ),
        (
            &[("GATEHOUSE_PUBLIC_URL", "auth.example.com")],
            "configuration error: GATEHOUSE_PUBLIC_URL: not a URL: relative URL without a base",
        ),
        (
            &[("GATEHOUSE_PUBLIC_URL", "ftp://auth.example.com")],
            "configuration error: GATEHOUSE_PUBLIC_URL: must be an http or https URL",
        ),
        (
            &[("GATEHOUSE_REQUEST_TIMEOUT", "0")],
            "configuration error: GATEHOUSE_REQUEST_TIMEOUT: 0 is out of range (1..=3600)",
        ),
        (
            &[("UI_ACCENT_COLOR", "red")],
            r#"configuration error: UI_ACCENT_COLOR: expected a colour as #rrggbb, got "red""#,
        ),
        (
            &[("UI_LOGO_URL", "javascript:alert(1)")],
            "configuration error: UI_LOGO_URL: must be an http or https URL",
        ),
        (
            &[("UI_REDIRECT_ALLOWLIST", "https://app.example.com/callback")],
            r#"configuration error: UI_REDIRECT_ALLOWLIST: "https://app.example.com/callback" is not an http(s) origin"#,
        ),
        (
            &[("GATEHOUSE_UI", "maybe")],
            r#"configuration error: GATEHOUSE_UI: expected true or false, got "maybe""#,
        ),
        (
            &[("JWT_SECRET", "short")],
            "configuration error: JWT_SECRET: must be at least 32 bytes",
        ),
        (
            &[("JWT_ALGORITHM", "none")],
            r#"configuration error: JWT_ALGORITHM: unknown value "none"; expected one of HS256, EdDSA, ES256, RS256"#,
        ),
        (
            &[("JWT_ALGORITHM", "EdDSA")],
            "configuration error: JWT_PRIVATE_KEY_FILE: required when JWT_ALGORITHM is not HS256",
        ),
        (
            &[("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem")],
            "configuration error: JWT_PRIVATE_KEY_FILE: /nonexistent/key.pem is not a readable file",
        ),
        (
            &[(
                "JWT_PREVIOUS_SECRETS",
                "previous-secret-previous-secret-00001,short",
            )],
            "configuration error: JWT_PREVIOUS_SECRETS: each secret must be at least 32 bytes",
        ),
        (
            &[("JWT_PREVIOUS_KEY_FILES", "Cargo.toml,/nonexistent/old.pem")],
            "configuration error: JWT_PREVIOUS_KEY_FILES: /nonexistent/old.pem is not a readable file",
        ),
        (
            &[("JWT_ACCESS_TOKEN_EXPIRES", "5")],
            "configuration error: JWT_ACCESS_TOKEN_EXPIRES: 5 is out of range (10..=86400)",
        ),
        (
            &[("JWT_REFRESH_TOKEN_EXPIRES", "1.5")],
            r#"configuration error: JWT_REFRESH_TOKEN_EXPIRES: invalid value "1.5": invalid digit found in string"#,
        ),
        (
            &[("AUTH_AUTO_LOGIN_ON_REGISTER", "maybe")],
            r#"configuration error: AUTH_AUTO_LOGIN_ON_REGISTER: expected true or false, got "maybe""#,
        ),
        (
            &[("AUTH_LOCKOUT_MINUTES", "0")],
            "configuration error: AUTH_LOCKOUT_MINUTES: 0 is out of range (1..=43200)",
        ),
        (
            &[("PASSWORD_HASH", "md5")],
            r#"configuration error: PASSWORD_HASH: unknown value "md5"; expected one of argon2id"#,
        ),
        (
            &[("PASSWORD_MIN_LENGTH", "200")],
            "configuration error: PASSWORD_MIN_LENGTH: 200 is out of range (1..=128)",
        ),
        (
            &[("PASSWORD_HASH_QUEUE", "0")],
            "configuration error: PASSWORD_HASH_QUEUE: 0 is out of range (1..=1000000)",
        ),
        (
            &[("RATE_LIMIT_BACKEND", "redis")],
            "configuration error: REDIS_URL: required when RATE_LIMIT_BACKEND=redis",
        ),
        (
            &[("RATE_LIMIT_BACKEND", "disk")],
            r#"configuration error: RATE_LIMIT_BACKEND: unknown value "disk"; expected one of memory, redis"#,
        ),
        (
            &[("REDIS_URL", "http://r")],
            "configuration error: REDIS_URL: must start with redis:// or rediss://",
        ),
        (
            &[("RATE_LIMIT_LOGIN_PER_MINUTE", "0")],
            r#"configuration error: RATE_LIMIT_LOGIN_PER_MINUTE: expected N (per IP+email) or N,M (per IP+email, per IP), got "0""#,
        ),
        (
            &[("RATE_LIMIT_LOGIN_PER_MINUTE", "5,x")],
            r#"configuration error: RATE_LIMIT_LOGIN_PER_MINUTE: expected N (per IP+email) or N,M (per IP+email, per IP), got "5,x""#,
        ),
        (
            &[("TRUSTED_PROXIES", "10.0.0.0/8,bogus")],
            r#"configuration error: TRUSTED_PROXIES: "bogus" is not an IP or CIDR"#,
        ),
        (
            &[("CORS_ALLOWED_ORIGINS", "https://a.example, nope")],
            r#"configuration error: CORS_ALLOWED_ORIGINS: "nope" is not an origin"#,
        ),
        (
            &[("SMTP_URL", "http://mail")],
            "configuration error: SMTP_URL: must start with smtp:// or smtps://",
        ),
        (
            &[("ENCRYPTION_MASTER_KEY", "!!!")],
            "configuration error: ENCRYPTION_MASTER_KEY: is not valid base64",
        ),
        (
            &[("ENCRYPTION_MASTER_KEY", "AAAA")],
            "configuration error: ENCRYPTION_MASTER_KEY: must decode to 32 bytes, got 3",
        ),
        (
            &[("OAUTH_ENABLED", "2")],
            r#"configuration error: OAUTH_ENABLED: expected true or false, got "2""#,
        ),
        (
            &[("GOOGLE_CLIENT_ID", "g-id")],
            "configuration error: GOOGLE_CLIENT_SECRET: required when GOOGLE_CLIENT_ID is set",
        ),
        (
            &[("OAUTH_GITHUB_API_URL", "api.github.com")],
            r#"configuration error: OAUTH_GITHUB_API_URL: "api.github.com" is not an http(s) URL"#,
        ),
        (
            &[("OAUTH_PROVIDERS", "acme,Bad Name")],
            r#"configuration error: OAUTH_PROVIDERS: "Bad Name" is not a provider name (a-z, 0-9, -)"#,
        ),
        (
            &[("OAUTH_PROVIDERS", "github")],
            r#"configuration error: OAUTH_PROVIDERS: "github" is not a provider name (a-z, 0-9, -)"#,
        ),
        (
            &[("OAUTH_PROVIDERS", "acme")],
            "configuration error: OAUTH_ACME_ISSUER: required for a provider named in OAUTH_PROVIDERS",
        ),
        (
            &[
                ("OAUTH_PROVIDERS", "my-idp"),
                ("OAUTH_MY_IDP_ISSUER", "https://idp.example.com"),
                ("OAUTH_MY_IDP_CLIENT_ID", "c"),
            ],
            "configuration error: OAUTH_MY_IDP_CLIENT_SECRET: required for a provider named in OAUTH_PROVIDERS",
        ),
        (
            &[(
                "OAUTH_REDIRECT_ALLOWLIST",
                "https://app.example.com, /relative",
            )],
            r#"configuration error: OAUTH_REDIRECT_ALLOWLIST: "/relative" is not an http(s) origin or URL prefix"#,
        ),
        (
            &[("ADMIN_USERNAME", "root")],
            "configuration error: ADMIN_PASSWORD: required when ADMIN_USERNAME is set",
        ),
        (
            &[("ADMIN_PASSWORD", "x")],
            "configuration error: ADMIN_USERNAME: required when ADMIN_PASSWORD is set",
        ),
        (
            &[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD", "x")],
            "configuration error: ADMIN_USERNAME: must be an email address: is not a valid email address",
        ),
        (
            &[("LOG_FORMAT", "xml")],
            r#"configuration error: LOG_FORMAT: unknown value "xml"; expected one of pretty, json"#,
        ),
        (
            &[("RUST_LOG", "gatehouse=loud")],
            r#"configuration error: RUST_LOG: error parsing level filter: expected one of "off", "error", "warn", "info", "debug", "trace", or a number 0-5"#,
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(error(pairs), *expected, "{pairs:?}");
    }
}

/// With many bad variables the first reported is fixed by the order sections are read in.
#[test]
fn the_order_in_which_bad_variables_are_reported() {
    let mut bad: Vec<(&str, Vec<(&str, &str)>)> = [
        ("RUST_LOG", "gatehouse=loud"),
        ("LOG_FORMAT", "xml"),
        ("GATEHOUSE_REQUEST_TIMEOUT", "0"),
        ("OAUTH_ENABLED", "2"),
        ("ENCRYPTION_MASTER_KEY", "AAAA"),
        ("SMTP_URL", "http://mail"),
        ("CORS_ALLOWED_ORIGINS", "nope"),
        ("TRUSTED_PROXIES", "bogus"),
        ("REDIS_URL", "http://r"),
        ("RATE_LIMIT_BACKEND", "disk"),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "0"),
        ("PASSWORD_HASH_QUEUE", "0"),
        ("PASSWORD_ARGON2_PARALLELISM", "0"),
        ("PASSWORD_ARGON2_ITERATIONS", "0"),
        ("PASSWORD_ARGON2_MEMORY_KIB", "0"),
        ("PASSWORD_REQUIRE_CLASSES", "maybe"),
        ("PASSWORD_MIN_LENGTH", "0"),
        ("PASSWORD_HASH_WORKERS", "0"),
        ("PASSWORD_HASH", "md5"),
        ("AUTH_REQUIRE_EMAIL_VERIFICATION", "maybe"),
        ("AUTH_AUTO_LOGIN_ON_REGISTER", "maybe"),
        ("AUTH_LOCKOUT_MINUTES", "0"),
        ("AUTH_MAX_LOGIN_ATTEMPTS", "0"),
        ("AUTH_REFRESH_REUSE_GRACE_SECONDS", "x"),
        ("JWT_REFRESH_TOKEN_EXPIRES", "0"),
        ("JWT_ACCESS_TOKEN_EXPIRES", "0"),
        ("JWT_PREVIOUS_KEY_FILES", "/nonexistent/old.pem"),
        ("JWT_PREVIOUS_SECRETS", "short"),
        ("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ("JWT_SECRET", "short"),
        ("JWT_ALGORITHM", "none"),
        ("GATEHOUSE_PUBLIC_URL", "ftp://x"),
        ("GATEHOUSE_BIND", "nowhere"),
        ("DB_CONNECT_TIMEOUT", "0"),
        ("DB_POOL_RECYCLE", "0"),
        ("DB_MAX_OVERFLOW", "x"),
        ("DB_POOL_SIZE", "0"),
        ("DATABASE_URL", "redis://x/1"),
    ]
    .into_iter()
    .map(|(var, value)| (var, vec![(var, value)]))
    .collect();
    // Reported under the variable that is missing.
    bad.push((
        "ADMIN_PASSWORD",
        vec![("ADMIN_USERNAME", "root@example.com")],
    ));
    let mut reported = Vec::new();
    while !bad.is_empty() {
        let err = Config::from_vars(&Vars::from_pairs(bad.iter().flat_map(|(_, p)| p.clone())))
            .expect_err("should be refused");
        let at = bad.iter().position(|(var, _)| *var == err.var);
        bad.remove(at.unwrap_or_else(|| panic!("{err}")));
        reported.push(err.var);
    }
    assert_eq!(
        reported,
        [
            "DATABASE_URL",
            "DB_POOL_SIZE",
            "DB_MAX_OVERFLOW",
            "DB_POOL_RECYCLE",
            "DB_CONNECT_TIMEOUT",
            "GATEHOUSE_BIND",
            "GATEHOUSE_PUBLIC_URL",
            "JWT_ALGORITHM",
            "JWT_SECRET",
            "JWT_PRIVATE_KEY_FILE",
            "JWT_PREVIOUS_SECRETS",
            "JWT_PREVIOUS_KEY_FILES",
            "JWT_ACCESS_TOKEN_EXPIRES",
            "JWT_REFRESH_TOKEN_EXPIRES",
            "AUTH_REFRESH_REUSE_GRACE_SECONDS",
            "AUTH_MAX_LOGIN_ATTEMPTS",
            "AUTH_LOCKOUT_MINUTES",
            "AUTH_AUTO_LOGIN_ON_REGISTER",
            "AUTH_REQUIRE_EMAIL_VERIFICATION",
            "PASSWORD_HASH",
            "PASSWORD_HASH_WORKERS",
            "PASSWORD_MIN_LENGTH",
            "PASSWORD_REQUIRE_CLASSES",
            "PASSWORD_ARGON2_MEMORY_KIB",
            "PASSWORD_ARGON2_ITERATIONS",
            "PASSWORD_ARGON2_PARALLELISM",
            "PASSWORD_HASH_QUEUE",
            "RATE_LIMIT_LOGIN_PER_MINUTE",
            "RATE_LIMIT_BACKEND",
            "REDIS_URL",
            "TRUSTED_PROXIES",
            "CORS_ALLOWED_ORIGINS",
            "SMTP_URL",
            "ENCRYPTION_MASTER_KEY",
            "OAUTH_ENABLED",
            "ADMIN_PASSWORD",
            "LOG_FORMAT",
            "RUST_LOG",
            "GATEHOUSE_REQUEST_TIMEOUT",
        ]
    );
}
