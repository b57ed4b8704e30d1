//! The container files say only what the server understands: every variable the Dockerfile and compose.yaml set is documented in docs/operations.md, every compose profile runs Gatehouse, and the image runs unprivileged with a health check.

use std::collections::BTreeSet;

use yaml_rust2::{Yaml, YamlLoader};

/// Variables of the services Gatehouse does not run (the database and Redis images' own).
const NOT_OURS: &[&str] = &[
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "MARIADB_USER",
    "MARIADB_PASSWORD",
    "MARIADB_DATABASE",
    "MARIADB_RANDOM_ROOT_PASSWORD",
];

fn read(path: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `NAME` written as `` `NAME` `` in docs/operations.md.
fn documented() -> BTreeSet<String> {
    let doc = read("docs/operations.md");
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}

#[test]
fn compose_sets_only_documented_variables_in_every_profile() {
    let docs = YamlLoader::load_from_str(&read("compose.yaml")).expect("compose.yaml parses");
    let services = &docs[0]["services"];
    let services = services.as_hash().expect("services");
    let known = documented();
    let mut profiles = BTreeSet::new();
    let mut gatehouse_profiles = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let own: Vec<String> = service["profiles"]
            .as_vec()
            .map(|v| {
                v.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        profiles.extend(own.iter().cloned());
        if let Some(env) = service["environment"].as_hash() {
            for var in env.keys().filter_map(Yaml::as_str) {
                if name.starts_with("gatehouse") {
                    assert!(
                        known.contains(var),
                        "{name}: {var} is not in docs/operations.md"
                    );
                } else {
                    assert!(NOT_OURS.contains(&var), "{name}: unexpected {var}");
                }
            }
        }
        if name.starts_with("gatehouse") {
            assert_eq!(
                service["build"].as_str(),
                Some("."),
                "{name} builds the image"
            );
            gatehouse_profiles.extend(own);
        }
    }
    let expected: BTreeSet<String> = ["sqlite", "postgres", "mariadb"].map(String::from).into();
    assert_eq!(profiles, expected);
    assert_eq!(gatehouse_profiles, expected, "each profile runs Gatehouse");
}

#[test]
fn the_image_is_unprivileged_healthy_and_documented() {
    let dockerfile = read("Dockerfile");
    let known = documented();
    let mut stages = 0;
    let mut env = Vec::new();
    let mut in_env = false;
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with("FROM ") {
            stages += 1;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            in_env = true;
            env.push(rest.to_string());
        } else if in_env {
            env.push(line.to_string());
        }
        in_env = in_env && line.ends_with('\\');
    }
    assert!(stages >= 2, "multi-stage");
    let vars: Vec<&str> = env
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(!vars.is_empty());
    for var in vars {
        assert!(
            known.contains(var),
            "Dockerfile sets {var}, not in docs/operations.md"
        );
    }
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let user = last_stage
        .lines()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the final stage sets USER");
    assert_ne!(user.trim(), "root");
    assert!(last_stage.contains("HEALTHCHECK") && last_stage.contains("/health"));
}
