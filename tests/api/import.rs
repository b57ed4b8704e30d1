//! Moving in from the systems Gatehouse replaces, through the real binary on every backend: each seed system's export (a Flask/SQLAlchemy SQLite database exported with `sqlite3 -json`, a `mongoexport` file, an AI platform's SQLite table exported with `sqlite3 -csv`) is imported, and the people log in over HTTP with their original passwords; hashes are upgraded to argon2id on that login; roles, disabled accounts and TOTP carry over; a second run changes nothing; refused records are reported by line; a dry run and a broken file write nothing; and `users export` round-trips without secrets.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestDb, assert_one_line_failure, assert_success, code_at, stdout, step_now,
};
use crate::integrations::MASTER_KEY;

const KEY: (&str, &str) = ("ENCRYPTION_MASTER_KEY", MASTER_KEY);
/// A base32 TOTP secret as pyotp stores it (160 bits).
const TOTP_BASE32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Hashes as the seeds' stacks store them, computed by Python's standard library (an
/// implementation independent of the server's RustCrypto crates): `(kind, password)` pairs in,
/// one hash per line out.
fn python_hashes(wanted: &[(&str, &str)]) -> Vec<String> {
    let script = r#"
import base64, hashlib, os, sys
for line in sys.stdin.read().splitlines():
    kind, pw = line.split(' ', 1)
    pw = pw.encode()
    salt = base64.b64encode(os.urandom(12)).decode().replace('+', 'x').replace('/', 'y')
    if kind == 'werkzeug-scrypt':
        dk = hashlib.scrypt(pw, salt=salt.encode(), n=16384, r=8, p=1, maxmem=132*16384*8, dklen=64)
        print('scrypt:16384:8:1$%s$%s' % (salt, dk.hex()))
    elif kind == 'werkzeug-pbkdf2':
        print('pbkdf2:sha256:20000$%s$%s' % (salt, hashlib.pbkdf2_hmac('sha256', pw, salt.encode(), 20000).hex()))
    elif kind == 'passlib':
        raw = os.urandom(16)
        ab64 = lambda b: base64.b64encode(b).decode().rstrip('=').replace('+', '.')
        print('$pbkdf2-sha256$20000$%s$%s' % (ab64(raw), ab64(hashlib.pbkdf2_hmac('sha256', pw, raw, 20000))))
    elif kind == 'django':
        dk = hashlib.pbkdf2_hmac('sha256', pw, salt.encode(), 20000)
        print('pbkdf2_sha256$20000$%s$%s' % (salt, base64.b64encode(dk).decode()))
"#;
    let input: String = wanted.iter().map(|(k, p)| format!("{k} {p}\n")).collect();
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (the tests need it to make the seeds' hashes)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hashes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(hashes.len(), wanted.len());
    hashes
}

/// Run `sqlite3` on `file` with `args` then `sql`, as an operator would; its standard output.
fn sqlite3(file: &Path, args: &[&str], sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .args(args)
        .arg(file)
        .arg(sql)
        .output()
        .expect("sqlite3 (the tests need it to build and export the seeds' databases)");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(db: &TestDb, name: &str, text: &str) -> PathBuf {
    let path = db.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `users import FILE --format F` plus `extra` arguments, with the master key set.
async fn import(db: &TestDb, file: &Path, format: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "users",
        "import",
        file.to_str().unwrap(),
        "--format",
        format,
    ];
    args.extend_from_slice(extra);
    db.cli(&args, &[KEY], None).await
}

/// The summary line's figures: (records, created, unchanged, refused).
fn summary(out: &str) -> (usize, usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.contains("record(s):"))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

async fn user_count(db: &TestDb) -> i64 {
    let rows = db.query("SELECT COUNT(*) AS n FROM users").await;
    rows[0].try_get::<i64>("", "n").unwrap()
}

/// Log in with `password`: 200 with a token pair, `/auth/me` answering, and the stored hash
/// upgraded to argon2id by that login. The roles `/auth/me` shows.
async fn logs_in(s: &TestApp, db: &TestDb, email: &str, password: &str) -> Vec<String> {
    let res = s.login_with(email, password).await;
    assert_eq!(res.status, 200, "{email}: {}", res.body);
    let pair = res.pair();
    let me = s.me(&pair.access).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let hash = db.user(&email.to_lowercase()).await.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{email}: {hash}");
    serde_json::from_value(me.body["user"]["roles"].clone()).unwrap()
}

async fn flask_sqlalchemy_database_moves_in(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let hashes = python_hashes(&[
        ("werkzeug-scrypt", "Ann-Pass1!"),
        ("werkzeug-pbkdf2", "Bob-Pass1!"),
        ("passlib", "Cat-Pass1!"),
        ("django", "Dan-Pass1!"),
    ]);
    // The Flask service's own database, as its SQLAlchemy models made it.
    let source = db.dir.path().join("flask.db");
    sqlite3(
        &source,
        &[],
        &format!(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255) UNIQUE NOT NULL,
               hashed_password VARCHAR(255), active BOOLEAN NOT NULL, mfa_secret VARCHAR(64),
               mfa_enabled BOOLEAN NOT NULL DEFAULT 0, metadata JSON, last_login DATETIME,
               created_at DATETIME NOT NULL);
             CREATE TABLE roles (id INTEGER PRIMARY KEY, name VARCHAR(80) UNIQUE NOT NULL);
             CREATE TABLE user_roles (user_id INTEGER REFERENCES users(id), role_id INTEGER REFERENCES roles(id));
             INSERT INTO roles VALUES (1, 'admin'), (2, 'user'), (3, 'editor');
             INSERT INTO users VALUES
               (1, 'Ann@Example.com', '{ann}', 1, NULL, 0, '{{\"plan\": \"pro\"}}', '2024-05-01 09:30:00.250000', '2021-03-04 05:06:07'),
               (2, 'bob@example.com', '{bob}', 1, '{TOTP_BASE32}', 1, NULL, NULL, '2022-01-01 00:00:00'),
               (3, 'cat@example.com', '{cat}', 0, NULL, 0, '{{}}', NULL, '2022-02-02 00:00:00'),
               (4, 'dan@example.com', '{dan}', 1, NULL, 0, NULL, NULL, '2023-03-03 00:00:00');
             INSERT INTO user_roles VALUES (1, 1), (1, 2), (2, 3), (3, 2), (4, 2);",
            ann = hashes[0],
            bob = hashes[1],
            cat = hashes[2],
            dan = hashes[3],
        ),
    );
    // Exported as docs/operations.md tells the operator to.
    let export = sqlite3(
        &source,
        &["-json"],
        "SELECT u.email, u.hashed_password, u.active, u.mfa_secret, u.mfa_enabled, u.metadata,
                u.last_login, u.created_at, group_concat(r.name) AS roles
         FROM users u LEFT JOIN user_roles ur ON ur.user_id = u.id
         LEFT JOIN roles r ON r.id = ur.role_id GROUP BY u.id ORDER BY u.id",
    );
    let file = write(&db, "flask-users.json", &export);
    let map = write(
        &db,
        "flask-map.json",
        r#"{"fields": {"password_hash": "hashed_password", "totp_secret": "mfa_secret",
                       "last_login_at": "last_login"},
            "roles": {"editor": "moderator"}}"#,
    );
    let map = map.to_str().unwrap();
    let out = assert_success(&import(&db, &file, "jsonl", &["--map", map]).await);
    assert_eq!(summary(&out), (4, 4, 0, 0), "{out}");

    // Kept as they were: times, metadata, the address as given (with its canonical key).
    let ann = db.user("ann@example.com").await;
    assert_eq!(ann.email, "Ann@Example.com");
    assert_eq!(ann.created_at.to_rfc3339(), "2021-03-04T05:06:07+00:00");
    assert_eq!(
        ann.last_login_at.unwrap().to_rfc3339(),
        "2024-05-01T09:30:00.250+00:00"
    );
    assert_eq!(ann.metadata, json!({"plan": "pro"}));
    assert!(ann.password_hash.as_deref().unwrap().starts_with("scrypt:"));
    // The TOTP secret is sealed, never stored in clear.
    let bob = db.user("bob@example.com").await;
    let sealed = bob.mfa_secret.clone().unwrap();
    assert!(bob.mfa_enabled && sealed.starts_with("v1:") && !sealed.contains(TOTP_BASE32));

    let s = db.app(&[KEY]).await;
    assert_eq!(
        logs_in(&s, &db, "ann@example.com", "Ann-Pass1!").await,
        ["admin", "user"]
    );
    assert_eq!(
        logs_in(&s, &db, "dan@example.com", "Dan-Pass1!").await,
        ["user"]
    );
    // A wrong password is still wrong, and a disabled account does not get in.
    assert_eq!(
        s.login_with("dan@example.com", "Ann-Pass1!").await.status,
        401
    );
    let res = s.login_with("cat@example.com", "Cat-Pass1!").await;
    assert_eq!(res.problem(), (403, "account_disabled"));
    // TOTP carried over: the password alone is half a login.
    let res = s.login_with("bob@example.com", "Bob-Pass1!").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["mfa_required"], true, "{}", res.body);
    let secret = crate::helpers::base32_decode(TOTP_BASE32);
    let res = s
        .mfa_verify(
            &res.body["mfa_token"],
            json!({"code": code_at(&secret, step_now())}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let me = s.me(&res.pair().access).await;
    assert_eq!(me.body["user"]["roles"], json!(["moderator"]));
    assert!(
        db.user("bob@example.com")
            .await
            .password_hash
            .unwrap()
            .starts_with("$argon2id$")
    );
    s.stop().await;

    // Idempotent: a second run changes nothing and says so.
    let before = db.user("ann@example.com").await;
    let out = assert_success(&import(&db, &file, "jsonl", &["--map", map]).await);
    assert_eq!(summary(&out), (4, 0, 4, 0), "{out}");
    assert_eq!(db.user("ann@example.com").await, before);
    assert_eq!(user_count(&db).await, 4);
}

async fn fastapi_mongoexport_moves_in(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    // The FastAPI service hashes with bcrypt at cost 12 (passlib's default) and stores roles as one string.
    let people = [
        ("eve@example.com", "Eve-Pass1!", "admin"),
        ("fay@example.com", "Fay-Pass1!", "user"),
        ("gus@example.com", "Gus-Pass1!", "moderator"),
    ];
    let mut lines = String::new();
    for (i, (email, password, role)) in people.iter().enumerate() {
        let hash = bcrypt::hash(password, 12).unwrap();
        // mongoexport's relaxed form for the first two, the canonical one for the last.
        let created = if i < 2 {
            json!({"$date": format!("2024-0{}-15T08:00:00.000Z", i + 1)})
        } else {
            json!({"$date": {"$numberLong": "1700000000000"}})
        };
        let doc = json!({
            "_id": {"$oid": format!("65f0c0ffee00000000000{i:03}")},
            "email": email, "userId": format!("usr_{i}"), "passwordHash": hash,
            "role": role, "createdAt": created, "loginCount": {"$numberLong": "3"}
        });
        lines.push_str(&doc.to_string());
        lines.push('\n');
    }
    let file = write(&db, "users.mongoexport.json", &lines);
    let out = assert_success(&import(&db, &file, "mongoexport", &[]).await);
    assert_eq!(summary(&out), (3, 3, 0, 0), "{out}");
    assert_eq!(
        db.user("gus@example.com").await.created_at.to_rfc3339(),
        "2023-11-14T22:13:20+00:00"
    );
    assert!(
        db.user("eve@example.com")
            .await
            .password_hash
            .unwrap()
            .starts_with("$2b$12$")
    );

    let s = db.app(&[KEY]).await;
    for (email, password, role) in people {
        assert_eq!(logs_in(&s, &db, email, password).await, [role]);
    }
    s.stop().await;

    // The same documents as `mongoexport --jsonArray` writes them: nothing new.
    let docs: Vec<&str> = lines.lines().collect();
    let array = write(&db, "users.array.json", &format!("[{}]", docs.join(",")));
    let out = assert_success(&import(&db, &array, "mongoexport", &[]).await);
    assert_eq!(summary(&out), (3, 0, 3, 0), "{out}");
}

async fn ai_platform_csv_moves_in(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    // The AI platform's SQLAlchemy table: bcrypt hashes, one role column, verified flags.
    let source = db.dir.path().join("platform.db");
    let rows: Vec<String> = [
        ("hal@example.com", "Hal-Pass1!", 1, 1, "ADMIN"),
        ("ivy@example.com", "Ivy-Pass1!", 1, 0, "user"),
        ("joe@example.com", "Joe-Pass1!", 0, 1, "viewer"),
        ("kim@example.com", "Kim-Pass1!", 1, 1, "data_scientist"),
    ]
    .iter()
    .map(|(email, password, active, verified, role)| {
        let hash = bcrypt::hash(password, 4).unwrap();
        format!("('{email}', '{hash}', {active}, {verified}, '{role}', '2024-06-01 12:00:00')")
    })
    .collect();
    sqlite3(
        &source,
        &[],
        &format!(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password_hash TEXT,
               is_active BOOLEAN, is_verified BOOLEAN, role VARCHAR(32), created_at DATETIME);
             INSERT INTO users (email, password_hash, is_active, is_verified, role, created_at)
             VALUES {};",
            rows.join(",")
        ),
    );
    let csv = sqlite3(
        &source,
        &["-header", "-csv"],
        "SELECT email, password_hash, is_active, is_verified, role, created_at FROM users ORDER BY id",
    );
    let file = write(&db, "platform.csv", &csv);
    // The platform's own role is unknown: that record is refused, by line, and the rest imported.
    let o = import(&db, &file, "csv", &[]).await;
    let line = assert_one_line_failure(&o);
    assert!(line.contains("1 record(s) refused"), "{line}");
    let out = stdout(&o);
    assert!(
        out.contains("line 5: refused: unknown role \"data_scientist\""),
        "{out}"
    );
    assert_eq!(summary(&out), (4, 3, 0, 1), "{out}");
    // Mapped, it comes in; the others are left as they are.
    let map = write(&db, "map.json", r#"{"roles": {"data_scientist": "user"}}"#);
    let out = assert_success(&import(&db, &file, "csv", &["--map", map.to_str().unwrap()]).await);
    assert_eq!(summary(&out), (4, 1, 3, 0), "{out}");
    assert!(!db.user("ivy@example.com").await.email_verified);
    assert!(db.user("hal@example.com").await.email_verified);

    let s = db.app(&[KEY]).await;
    assert_eq!(
        logs_in(&s, &db, "hal@example.com", "Hal-Pass1!").await,
        ["admin"]
    );
    assert_eq!(
        logs_in(&s, &db, "kim@example.com", "Kim-Pass1!").await,
        ["user"]
    );
    let res = s.login_with("joe@example.com", "Joe-Pass1!").await;
    assert_eq!(res.problem(), (403, "account_disabled"));
    let joe = db.user("joe@example.com").await.password_hash.unwrap();
    assert!(
        joe.starts_with("$2b$"),
        "a refused login leaves the hash alone: {joe}"
    );
    s.stop().await;
}

async fn refused_records_are_reported_by_line(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let good = bcrypt::hash("Good-Pass1!", 4).unwrap();
    let rows = [
        json!({"email": "ok@example.com", "password_hash": good}),
        json!({"email": "not an email", "password_hash": good}),
        json!({"email": "md5@example.com", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99"}),
        json!({"email": "OK@example.com", "password_hash": good}),
        json!({"email": "role@example.com", "role": "wizard"}),
        json!({"email": "totp@example.com", "mfa_secret": TOTP_BASE32, "mfa_enabled": true}),
        json!({"email": "late@example.com", "password_hash": good, "created_at": "soon"}),
    ];
    let mut text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    text.push_str("{not json\n");
    let file = write(&db, "mixed.jsonl", &text);
    // Without ENCRYPTION_MASTER_KEY, as MFA enrolment refuses to store a secret without it.
    let report = db.dir.path().join("refused.txt");
    let args = [
        "users",
        "import",
        file.to_str().unwrap(),
        "--format",
        "jsonl",
        "--report",
        report.to_str().unwrap(),
    ];
    let o = db.cli(&args, &[], None).await;
    let line = assert_one_line_failure(&o);
    assert!(
        line.contains("7 record(s) refused") && line.contains("refused.txt"),
        "{line}"
    );
    assert_eq!(summary(&stdout(&o)), (8, 1, 0, 7));
    let report = std::fs::read_to_string(report).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    for (n, (at, why)) in [
        (2, "email:"),
        (3, "password_hash: an unknown password hash format"),
        (4, "email: the same address as line 1"),
        (5, "unknown role \"wizard\""),
        (6, "totp_secret: ENCRYPTION_MASTER_KEY is not set"),
        (7, "created_at:"),
        (8, "not JSON"),
    ]
    .into_iter()
    .enumerate()
    {
        let expected = format!("line {at}: refused: {why}");
        assert!(lines[n].starts_with(&expected), "{expected}\n{report}");
    }
    // Only the good record is in, and no hash that Gatehouse cannot verify was stored.
    assert_eq!(user_count(&db).await, 1);
    let stored = db.query("SELECT password_hash FROM users").await;
    assert!(
        stored[0]
            .try_get::<String>("", "password_hash")
            .unwrap()
            .starts_with("$2b$")
    );
}

async fn dry_runs_and_broken_files_write_nothing(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let hash = bcrypt::hash("Good-Pass1!", 4).unwrap();
    let docs: Vec<String> = (0..1500)
        .map(|i| {
            json!({"email": format!("u{i}@example.com"), "passwordHash": hash, "role": "user"})
                .to_string()
        })
        .collect();
    let file = write(&db, "all.jsonl", &(docs.join("\n") + "\n"));
    let out = assert_success(&import(&db, &file, "mongoexport", &["--dry-run"]).await);
    assert!(out.contains("dry run, nothing written"), "{out}");
    assert_eq!(summary(&out), (1500, 1500, 0, 0), "{out}");
    assert_eq!(user_count(&db).await, 0);

    // A `--jsonArray` export cut off after 1,500 documents (more than a batch): nothing is written.
    let cut = format!("[{},\n{{\"email\": \"u1500@exa", docs.join(",\n"));
    let file = write(&db, "cut.json", &cut);
    let line = assert_one_line_failure(&import(&db, &file, "mongoexport", &[]).await);
    assert!(line.contains("line 1501"), "{line}");
    assert_eq!(user_count(&db).await, 0);
    // Bytes that are not UTF-8 in the middle of the file: the same.
    let mut bytes = (docs[..1200].join("\n") + "\n").into_bytes();
    bytes.extend_from_slice(b"{\"email\": \"\xff\xfe@example.com\"}\n");
    bytes.extend_from_slice((docs[1200..].join("\n") + "\n").as_bytes());
    let file = db.dir.path().join("binary.jsonl");
    std::fs::write(&file, bytes).unwrap();
    assert_one_line_failure(&import(&db, &file, "jsonl", &[]).await);
    assert_eq!(user_count(&db).await, 0);
    // A map file that is wrong stops before anything.
    let map = write(&db, "bad-map.json", r#"{"roles": {"user": "root"}}"#);
    let line = assert_one_line_failure(
        &import(&db, &file, "jsonl", &["--map", map.to_str().unwrap()]).await,
    );
    assert!(line.contains("not a Gatehouse role"), "{line}");

    // The whole file, for real, in batches: every account with its role.
    let file = db.dir.path().join("all.jsonl");
    let out = assert_success(&import(&db, &file, "mongoexport", &[]).await);
    assert_eq!(summary(&out), (1500, 1500, 0, 0), "{out}");
    let grants = db
        .query("SELECT COUNT(*) AS n FROM user_roles WHERE role = 'user'")
        .await;
    assert_eq!(grants[0].try_get::<i64>("", "n").unwrap(), 1500);
    assert_eq!(user_count(&db).await, 1500);
}

async fn export_round_trips_without_secrets(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let hashes = python_hashes(&[("werkzeug-pbkdf2", "Lee-Pass1!")]);
    let rows = [
        json!({"email": "lee@example.com", "password_hash": hashes[0], "roles": ["admin", "user"],
            "metadata": {"team": "ops"}, "created_at": "2020-01-01T00:00:00Z"}),
        json!({"email": "mia@example.com", "password_hash": bcrypt::hash("Mia-Pass1!", 4).unwrap(),
            "active": false, "email_verified": false}),
        json!({"email": "ned@example.com", "password_hash": bcrypt::hash("Ned-Pass1!", 4).unwrap(),
            "totp_secret": TOTP_BASE32, "mfa_enabled": true}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let file = write(&db, "in.jsonl", &text);
    assert_success(&import(&db, &file, "jsonl", &[]).await);
    // Lee logs in once, so the export carries an argon2id hash for Lee.
    let s = db.app(&[KEY]).await;
    logs_in(&s, &db, "lee@example.com", "Lee-Pass1!").await;
    s.stop().await;

    // Without --with-hashes: no hash, no secret, on standard output.
    let plain = db.run_ok(&["users", "export", "--format", "jsonl"]).await;
    let lines: Vec<Value> = plain
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{plain}");
    for line in &lines {
        assert!(line.get("password_hash").is_none(), "{line}");
    }
    for secret in ["$argon2id$", "$2b$", "v1:", TOTP_BASE32, "mfa_secret"] {
        assert!(!plain.contains(secret), "{secret} in {plain}");
    }
    let lee = lines
        .iter()
        .find(|l| l["email"] == "lee@example.com")
        .unwrap();
    assert_eq!(lee["roles"], json!(["admin", "user"]));
    assert_eq!(lee["metadata"], json!({"team": "ops"}));
    assert_eq!(lee["created_at"], "2020-01-01T00:00:00Z");
    assert!(lee["last_login_at"].is_string());
    let ned = lines
        .iter()
        .find(|l| l["email"] == "ned@example.com")
        .unwrap();
    assert_eq!(ned["mfa_enabled"], true);

    // With hashes, to a file, into a second database: everyone is there and logs in.
    let out_file = db.dir.path().join("out.jsonl");
    let args = [
        "users",
        "export",
        "--with-hashes",
        "--output",
        out_file.to_str().unwrap(),
    ];
    let printed = db.run_ok(&args).await;
    assert!(printed.contains("3 user(s)"), "{printed}");
    let exported = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        exported.contains("$argon2id$") && !exported.contains("v1:"),
        "{exported}"
    );
    let other = TestDb::create(db.backend).await.unwrap();
    other.run_ok(&["db", "init"]).await;
    let o = import(&other, &out_file, "jsonl", &[]).await;
    let out = assert_success(&o);
    assert_eq!(summary(&out), (3, 3, 0, 0), "{out}");
    // The second factor's secret never leaves: Ned comes in without TOTP, and the report says so.
    assert!(
        out.contains("note: TOTP was on but the record has no secret"),
        "{out}"
    );
    let s = other.app(&[KEY]).await;
    assert_eq!(
        logs_in(&s, &other, "lee@example.com", "Lee-Pass1!").await,
        ["admin", "user"]
    );
    assert_eq!(
        logs_in(&s, &other, "ned@example.com", "Ned-Pass1!").await,
        ["user"]
    );
    let res = s.login_with("mia@example.com", "Mia-Pass1!").await;
    assert_eq!(res.problem(), (403, "account_disabled"));
    s.stop().await;
    let again = other
        .run_ok(&["users", "export", "--format", "jsonl"])
        .await;
    let again: Vec<Value> = again
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lee2 = again
        .iter()
        .find(|l| l["email"] == "lee@example.com")
        .unwrap();
    for field in [
        "roles",
        "metadata",
        "created_at",
        "active",
        "email_verified",
    ] {
        assert_eq!(lee2[field], lee[field], "{field}");
    }
}

per_backend!(
    flask_sqlalchemy_database_moves_in,
    fastapi_mongoexport_moves_in,
    ai_platform_csv_moves_in,
    refused_records_are_reported_by_line,
    dry_runs_and_broken_files_write_nothing,
    export_round_trips_without_secrets,
);
