//! Consistent SQLite copies while the server runs (`VACUUM INTO`), and restoring one; for server databases, the dump command to use.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::StoreError;
use crate::config::{Backend, DatabaseConfig};

/// Write a consistent copy of the live SQLite database to `target` (which must not exist).
pub async fn sqlite_backup(db: &DatabaseConnection, target: &Path) -> Result<u64, StoreError> {
    if target.exists() {
        return Err(StoreError::Io(format!(
            "{} already exists",
            target.display()
        )));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let path = target
        .to_str()
        .ok_or_else(|| StoreError::Io("backup path is not valid UTF-8".into()))?;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "VACUUM INTO ?",
        [path.into()],
    ))
    .await?;
    Ok(std::fs::metadata(target)?.len())
}

/// Replace the SQLite database file with `source` (a file made by `db backup`). The server must be stopped.
pub async fn sqlite_restore(cfg: &DatabaseConfig, source: &Path) -> Result<(), StoreError> {
    let target = cfg
        .sqlite_path
        .clone()
        .ok_or_else(|| StoreError::Io("an in-memory database cannot be restored".into()))?;
    // Check the file is a Gatehouse SQLite database before touching anything.
    let check = DatabaseConfig::from_url(&format!("sqlite://{}", source.display()))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    if !source.is_file() {
        return Err(StoreError::Io(format!(
            "{} is not a file",
            source.display()
        )));
    }
    let probe = super::db::connect(&check).await?;
    let ok = probe
        .query_one_raw(Statement::from_string(
            probe.get_database_backend(),
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
        ))
        .await
        .map_err(|_| StoreError::Io(format!("{} is not an SQLite database", source.display())))?
        .is_some();
    probe.close().await?;
    if !ok {
        return Err(StoreError::Io(format!(
            "{} is not a Gatehouse backup (no migration table)",
            source.display()
        )));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let staging = with_suffix(&target, ".restoring");
    std::fs::copy(source, &staging)?;
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&target, side));
    }
    std::fs::rename(&staging, &target)?;
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The shell command that backs up (or restores) a server database.
pub fn dump_command(cfg: &DatabaseConfig, file: &Path, restore: bool) -> Option<String> {
    let url = url::Url::parse(cfg.url.expose()).ok()?;
    let db = url.path().trim_start_matches('/');
    let host = url.host_str().unwrap_or("127.0.0.1");
    let user = url.username();
    let file = file.display();
    match (cfg.backend, restore) {
        (Backend::Sqlite, _) => None,
        (Backend::Postgres, false) => Some(format!(
            "pg_dump --format=custom --host={host} --port={} --username={} --file={file} {db}",
            url.port().unwrap_or(5432),
            if user.is_empty() { "postgres" } else { user },
        )),
        (Backend::Postgres, true) => Some(format!(
            "pg_restore --clean --if-exists --host={host} --port={} --username={} --dbname={db} {file}",
            url.port().unwrap_or(5432),
            if user.is_empty() { "postgres" } else { user },
        )),
        (Backend::MySql, false) => Some(format!(
            "mysqldump --single-transaction --routines --host={host} --port={} --user={} -p {db} > {file}",
            url.port().unwrap_or(3306),
            if user.is_empty() { "root" } else { user },
        )),
        (Backend::MySql, true) => Some(format!(
            "mysql --host={host} --port={} --user={} -p {db} < {file}",
            url.port().unwrap_or(3306),
            if user.is_empty() { "root" } else { user },
        )),
    }
}
