//! The `gatehouse` binary before any database: bad configuration named in one line, unreachable servers without their password, signing keys, `--print-config` with secrets masked, and `keys generate`.

use crate::helpers::{assert_one_line_failure, run_cli, stderr, stdout};

async fn run(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    run_cli(dir.path(), &[], args, env, None).await
}

#[tokio::test]
async fn bad_configuration_names_the_variable() {
    for (var, value) in [
        ("DB_POOL_SIZE", "lots"),
        ("DB_TYPE", "oracle"),
        ("LOG_FORMAT", "xml"),
        ("JWT_SECRET", "short"),
        ("DATABASE_URL", "ftp://x/y"),
    ] {
        let line = assert_one_line_failure(&run(&[(var, value)], &["db", "status"]).await);
        assert!(line.contains(var), "{line}");
    }
}

#[tokio::test]
async fn a_relying_party_off_the_public_url_stops_the_start() {
    let public = ("GATEHOUSE_PUBLIC_URL", "https://auth.example.com");
    for (var, value, says) in [
        (
            "WEBAUTHN_RP_ID",
            "example.org",
            "does not match GATEHOUSE_PUBLIC_URL",
        ),
        (
            "WEBAUTHN_RP_ORIGINS",
            "https://evil.example.net",
            "is not on WEBAUTHN_RP_ID",
        ),
        (
            "WEBAUTHN_RP_ORIGINS",
            "http://auth.example.com",
            "must be https",
        ),
    ] {
        let line = assert_one_line_failure(&run(&[public, (var, value)], &["serve"]).await);
        assert!(line.contains(var) && line.contains(says), "{line}");
    }
}

#[tokio::test]
async fn unreachable_database_is_one_line_without_the_password() {
    for url in [
        "postgres://gate:hunter2@127.0.0.1:1/gh",
        "mysql://gate:hunter2@127.0.0.1:1/gh",
    ] {
        for args in [
            &["db", "check"][..],
            &["db", "status"],
            &["serve"],
            &["users", "list"],
        ] {
            let o = run(
                &[
                    ("DATABASE_URL", url),
                    ("DB_CONNECT_TIMEOUT", "2"),
                    ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ],
                args,
            )
            .await;
            let line = assert_one_line_failure(&o);
            assert!(line.contains("cannot connect"), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
        }
    }
}

#[tokio::test]
async fn postgres_without_jwt_secret_refuses_to_serve() {
    let line = assert_one_line_failure(
        &run(
            &[(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            )],
            &["serve"],
        )
        .await,
    );
    assert!(line.contains("JWT_SECRET"), "{line}");
}

#[tokio::test]
async fn a_bad_signing_key_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("gh.db").display());
    for alg in ["EdDSA", "ES256", "RS256"] {
        let env = [
            ("DATABASE_URL", url.as_str()),
            ("JWT_ALGORITHM", alg),
            ("JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
        ];
        let line = assert_one_line_failure(&run_cli(dir.path(), &[], &["serve"], &env, None).await);
        assert!(line.contains("JWT_PRIVATE_KEY_FILE"), "{line}");
    }
    let line = assert_one_line_failure(
        &run(
            &[
                ("JWT_ALGORITHM", "RS256"),
                ("JWT_PRIVATE_KEY_FILE", "/nonexistent.pem"),
            ],
            &["serve"],
        )
        .await,
    );
    assert!(line.contains("JWT_PRIVATE_KEY_FILE"), "{line}");
}

#[tokio::test]
async fn print_config_masks_secrets_and_reads_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "JWT_SECRET=dotenv-secret-dotenv-secret-dotenv-secret\nGATEHOUSE_BIND=0.0.0.0:9999\nDB_POOL_SIZE=3\n").unwrap();
    let o = run_cli(
        dir.path(),
        &[],
        &["serve", "--print-config"],
        &[
            ("DB_POOL_SIZE", "7"),
            ("DATABASE_URL", "postgres://u:pw-secret@db/gh"),
        ],
        None,
    )
    .await;
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("GATEHOUSE_BIND=0.0.0.0:9999"), "{out}");
    assert!(
        out.contains("DB_POOL_SIZE=7"),
        "environment wins over .env: {out}"
    );
    assert!(out.contains("JWT_SECRET=********"), "{out}");
    assert!(
        !out.contains("dotenv-secret") && !out.contains("pw-secret"),
        "{out}"
    );
}

#[tokio::test]
async fn keys_generate_prints_usable_keys() {
    let o = run(&[], &["keys", "generate"]).await;
    assert!(o.status.success());
    let out = stdout(&o);
    let jwt = out
        .lines()
        .find_map(|l| l.strip_prefix("JWT_SECRET="))
        .unwrap();
    let master = out
        .lines()
        .find_map(|l| l.strip_prefix("ENCRYPTION_MASTER_KEY="))
        .unwrap();
    assert!(jwt.len() >= 32);
    // Both are accepted by the configuration.
    let o = run(
        &[("JWT_SECRET", jwt), ("ENCRYPTION_MASTER_KEY", master)],
        &["serve", "--print-config"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let again = stdout(&run(&[], &["keys", "generate"]).await);
    assert_ne!(out, again);
}
