//! The documentation in step with the code: every variable the configuration reads is in the table of docs/operations.md with the default the code uses, and every variable there is read; every command and flag of the binary is in docs/operations.md; every route of `/openapi.json` is in docs/api.md, and every route documented as served is in `/openapi.json`.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse::config::{Config, Vars};

use crate::helpers::{Backend, TestDb};

fn read(path: &str) -> String {
    let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` split on `sep` where `sep` is not inside a `code span`.
fn split_outside_code(text: &str, sep: char) -> Vec<String> {
    let (mut parts, mut part, mut code) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '`' => code = !code,
            c if c == sep && !code => {
                parts.push(std::mem::take(&mut part));
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
    parts.push(part);
    parts.iter().map(|p| p.trim().to_string()).collect()
}

/// A documented default as a value: backticks dropped, `—` for none.
fn doc_value(cell: &str) -> Option<String> {
    let v = cell.trim().trim_matches('`');
    (v != "—").then(|| v.to_string())
}

/// The `| variable | default | meaning |` table: each variable with the default its row gives
/// it (a row of several variables has one default for each, in order, or one for all).
fn documented_variables() -> BTreeMap<String, Option<String>> {
    let doc = read("docs/operations.md");
    let rows = doc
        .lines()
        .skip_while(|l| !l.starts_with("| variable | default | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut vars = BTreeMap::new();
    for row in rows {
        let cells = split_outside_code(row.trim().trim_matches('|'), '|');
        let names = split_outside_code(&cells[0], ',');
        let defaults = split_outside_code(&cells[1], ',');
        assert!(
            defaults.len() == names.len() || defaults.len() == 1,
            "{} variables and {} defaults in: {row}",
            names.len(),
            defaults.len()
        );
        for (i, name) in names.iter().enumerate() {
            let name = name.trim_matches('`');
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "not a variable: {name:?} in {row}"
            );
            let default = doc_value(&defaults[if defaults.len() == 1 { 0 } else { i }]);
            assert!(
                vars.insert(name.to_string(), default).is_none(),
                "{name} twice"
            );
        }
    }
    assert!(vars.len() > 30, "the table was not found: {vars:?}");
    vars
}

/// Every variable name the configuration code reads: the first argument of a `vars.…("NAME"`
/// call and the `const VAR: &str = "NAME"` a section reads through, in every module of
/// src/config that is not `#[cfg(test)]`.
fn variables_read() -> BTreeSet<String> {
    let dir = format!("{}/src/config", env!("CARGO_MANIFEST_DIR"));
    let module = read("src/config/mod.rs");
    let lines: Vec<&str> = module.lines().collect();
    let test_only: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0].trim() == "#[cfg(test)]")
        .filter_map(|w| w[1].trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(|m| format!("{m}.rs"))
        .collect();
    assert!(
        !test_only.is_empty(),
        "no #[cfg(test)] modules in {dir}/mod.rs"
    );
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if !file.ends_with(".rs") || test_only.contains(&file) {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("vars") {
            // `vars\n    .number::<u64>(\n    "NAME"`: skip whitespace, the method, a turbofish.
            let Some(rest) = source[at + "vars".len()..].trim_start().strip_prefix('.') else {
                continue;
            };
            let rest = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            let rest = match rest.strip_prefix("::<") {
                Some(r) => &r[r.find('>').unwrap() + 1..],
                None => rest,
            };
            if let Some(quoted) = rest
                .strip_prefix('(')
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('"'))
            {
                names.insert(quoted[..quoted.find('"').unwrap()].to_string());
            }
        }
        for (at, _) in source.match_indices("const VAR: &str = \"") {
            let quoted = &source[at + "const VAR: &str = \"".len()..];
            names.insert(quoted[..quoted.find('"').unwrap()].to_string());
        }
    }
    names
}

/// `render_masked()` of a configuration read from `pairs` (everything else at its default),
/// as name → value; `(unset)` and an empty list are no value.
fn rendered(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
    let config = Config::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap();
    config
        .render_masked()
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            let value = (!value.is_empty() && value != "(unset)").then(|| value.to_string());
            (name.to_string(), value)
        })
        .collect()
}

/// The defaults of the `DB_*` parts, which `--print-config` shows only inside the URL they
/// build (and only when `DB_TYPE` is set: unset, the `DB_*` form is not used at all).
fn database_part_defaults() -> BTreeMap<String, Option<String>> {
    let url = |pairs: &[(&str, &str)]| {
        let url = rendered(pairs)["DATABASE_URL"].clone().unwrap();
        url::Url::parse(&url).unwrap()
    };
    let sqlite = rendered(&[("DB_TYPE", "sqlite")])["DATABASE_URL"]
        .clone()
        .unwrap();
    let postgres = url(&[("DB_TYPE", "postgres"), ("DB_DATABASE", "d")]);
    let mysql = url(&[("DB_TYPE", "mysql"), ("DB_DATABASE", "d")]);
    let database_required = Config::from_vars(&Vars::from_pairs([("DB_TYPE", "postgres")]))
        .is_err_and(|e| e.var == "DB_DATABASE");
    assert!(database_required, "DB_DATABASE has a default now");
    let value = |s: &str| (!s.is_empty()).then(|| s.to_string());
    [
        ("DB_TYPE", None),
        (
            "DB_PATH",
            sqlite.strip_prefix("sqlite://").map(String::from),
        ),
        ("DB_HOST", postgres.host_str().map(String::from)),
        (
            "DB_PORT",
            Some(format!(
                "{} / {}",
                postgres.port().unwrap(),
                mysql.port().unwrap()
            )),
        ),
        ("DB_DATABASE", None),
        ("DB_USERNAME", value(postgres.username())),
        ("DB_PASSWORD", postgres.password().map(String::from)),
    ]
    .into_iter()
    .map(|(name, v)| (name.to_string(), v))
    .collect()
}

/// Defaults that are not one literal value: the docs' words, and the value they stand for on
/// this machine. Keep this list as short as the code allows.
fn not_literal() -> BTreeMap<&'static str, (&'static str, String)> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    BTreeMap::from([
        (
            "PASSWORD_HASH_WORKERS",
            ("number of cores", cores.to_string()),
        ),
        (
            "PASSWORD_HASH_QUEUE",
            ("32 × workers", (32 * cores).to_string()),
        ),
        // Derived from GATEHOUSE_PUBLIC_URL.
        (
            "UI_REDIRECT_ALLOWLIST",
            (
                "the public URL's origin",
                "http://127.0.0.1:8080".to_string(),
            ),
        ),
        (
            "OAUTH_REDIRECT_ALLOWLIST",
            (
                "`GATEHOUSE_PUBLIC_URL`'s origin",
                "http://127.0.0.1:8080".to_string(),
            ),
        ),
        // The product's name unless set.
        (
            "WEBAUTHN_RP_NAME",
            ("`UI_PRODUCT_NAME`", "Gatehouse".to_string()),
        ),
        // No value; on SQLite a random key is made and kept beside the database file.
        (
            "JWT_SECRET",
            ("—", "(development key in ./data/jwt_secret)".to_string()),
        ),
    ])
}

#[test]
fn every_variable_is_documented_with_its_default_and_the_reverse() {
    let documented = documented_variables();
    let read = variables_read();
    let mut code = rendered(&[]);
    code.extend(database_part_defaults());

    let missing: Vec<&String> = read
        .iter()
        .filter(|v| !documented.contains_key(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "read but not in docs/operations.md: {missing:?}"
    );
    let unread: Vec<&String> = documented.keys().filter(|v| !read.contains(*v)).collect();
    assert!(
        unread.is_empty(),
        "in docs/operations.md but never read: {unread:?}"
    );
    let unknown: Vec<&String> = code.keys().filter(|v| !read.contains(*v)).collect();
    assert!(
        unknown.is_empty(),
        "printed but not found read (fix the scan): {unknown:?}"
    );

    let exceptions = not_literal();
    let mut wrong = Vec::new();
    for (name, doc) in &documented {
        let code = code
            .get(name)
            .unwrap_or_else(|| panic!("{name}: no default known; print it or derive it here"));
        let (doc, code) = match exceptions.get(name.as_str()) {
            Some((words, value)) => {
                assert_eq!(doc_value(words), *doc, "{name}: the docs changed its words");
                (Some(value.clone()), code.clone())
            }
            // A URL prints with its root path's slash.
            None => (
                doc.as_deref().map(|d| d.trim_end_matches('/').to_string()),
                code.as_deref().map(|c| c.trim_end_matches('/').to_string()),
            ),
        };
        if doc != code {
            wrong.push(format!("{name}: docs {doc:?}, code {code:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "defaults that differ:\n{}",
        wrong.join("\n")
    );
}

/// Every command of the binary (`gatehouse <group> <command>`, from clap's own definition) has a
/// row in the command table of docs/operations.md, and each of its flags is documented there or
/// elsewhere in that file.
#[test]
fn every_command_and_flag_is_in_the_operations_table() {
    use clap::CommandFactory;
    let doc = read("docs/operations.md");
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| command | what it does |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(table.len() > 5, "the command table was not found");
    let cli = gatehouse::cli::Cli::command();
    let mut missing = Vec::new();
    for group in cli.get_subcommands() {
        let leaves: Vec<(String, &clap::Command)> = if group.has_subcommands() {
            group
                .get_subcommands()
                .map(|c| {
                    (
                        format!("gatehouse {} {}", group.get_name(), c.get_name()),
                        c,
                    )
                })
                .collect()
        } else {
            vec![(format!("gatehouse {}", group.get_name()), group)]
        };
        for (name, command) in leaves {
            let Some(row) = table.iter().find(|r| r.contains(&format!("`{name}"))) else {
                missing.push(name);
                continue;
            };
            for flag in command.get_arguments().filter_map(|a| a.get_long()) {
                if !row.contains(&format!("--{flag}")) && !doc.contains(&format!("--{flag}")) {
                    missing.push(format!("{name} --{flag}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/operations.md: {missing:?}");
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The `(METHOD, path)` pairs docs/api.md names (table rows `| METHOD | /path… |` and code
/// spans `` `METHOD /path` ``), as written (under `/api/v1` or at the root; placeholders written
/// `{}`), split into those served and those of a section "not served yet".
fn documented_routes() -> (BTreeSet<Route>, BTreeSet<Route>) {
    let (mut served, mut planned) = (BTreeSet::new(), BTreeSet::new());
    let mut not_served = false;
    for line in read("docs/api.md").lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            not_served = heading.contains("not served yet");
            continue;
        }
        let mut found: Vec<(&str, &str)> = Vec::new();
        if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.len() > 1 && METHODS.contains(&cells[0]) {
                found.push((cells[0], cells[1].split([' ', '`']).next().unwrap()));
            }
        }
        for span in line.split('`').skip(1).step_by(2) {
            if let Some((method, path)) = span.split_once(' ')
                && METHODS.contains(&method)
                && path.starts_with('/')
            {
                found.push((method, path));
            }
        }
        for (method, path) in found {
            let route = (
                method.to_string(),
                placeholders(path.split('?').next().unwrap()),
            );
            if not_served {
                planned.insert(route);
            } else {
                served.insert(route);
            }
        }
    }
    assert!(served.len() > 20, "the routes were not found: {served:?}");
    (served, planned)
}

type Route = (String, String);

/// Whether the documented route `doc` is the served route `served`: the same path (root
/// routes), or that path without the `/api/v1` base path the API's tables leave out.
fn same_route((doc_method, doc_path): &Route, (method, path): &Route) -> bool {
    doc_method == method && (doc_path == path || path.strip_prefix("/api/v1") == Some(doc_path))
}

/// `/users/{id}/roles` → `/users/{}/roles`.
fn placeholders(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_openapi_document_is_in_the_api_docs() {
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let s = db.app(&[]).await;
    let res = s.get_public("/openapi.json").await;
    assert_eq!(res.status, 200);
    let mut served = BTreeSet::new();
    for (path, item) in res.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if METHODS.contains(&method.as_str()) {
                served.insert((method, placeholders(path)));
            }
        }
    }
    s.stop().await;
    let (documented, planned) = documented_routes();
    let named = |docs: &BTreeSet<Route>, r: &Route| docs.iter().any(|d| same_route(d, r));
    let undocumented: Vec<_> = served.iter().filter(|r| !named(&documented, r)).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/api.md: {undocumented:?}"
    );
    let unserved: Vec<_> = documented
        .iter()
        .filter(|d| !served.iter().any(|r| same_route(d, r)))
        .collect();
    assert!(
        unserved.is_empty(),
        "documented as served, not in /openapi.json: {unserved:?}"
    );
    let early: Vec<_> = served.iter().filter(|r| named(&planned, r)).collect();
    assert!(
        early.is_empty(),
        "documented as not served yet, but served: {early:?}"
    );
}
