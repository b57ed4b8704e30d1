//! `gatehouse db …`: schema revisions, health check, reset, backup and restore.

use super::DbCommand;
use crate::Error;
use crate::config::{Backend, Config};
use crate::store::{backup, db, schema};

pub(super) async fn run(config: Config, cmd: DbCommand) -> Result<(), Error> {
    let cfg = &config.database;
    if let DbCommand::Restore { file } = &cmd {
        // Restore replaces the file: never open a pool on it first.
        return match backup::dump_command(cfg, file, true) {
            Some(command) => {
                println!("{command}");
                Ok(())
            }
            None => {
                backup::sqlite_restore(cfg, file).await?;
                println!("restored {} from {}", cfg.masked_url(), file.display());
                Ok(())
            }
        };
    }
    if let DbCommand::Init = cmd
        && db::create_database_if_missing(cfg).await?
    {
        println!("created database {}", cfg.masked_url());
    }
    let conn = db::connect(cfg).await?;
    match cmd {
        DbCommand::Init | DbCommand::Upgrade { to: None } => {
            let n = schema::upgrade(&conn, None).await?;
            println!("applied {n} migration(s); schema is up to date");
        }
        DbCommand::Upgrade { to: Some(rev) } => {
            let n = schema::upgrade(&conn, Some(&rev)).await?;
            println!(
                "applied {n} migration(s); now at revision {}",
                schema::resolve(&rev)?
            );
        }
        DbCommand::Downgrade { to } => {
            let n = schema::downgrade(&conn, &to).await?;
            println!(
                "reverted {n} migration(s); now at revision {}",
                schema::resolve(&to)?
            );
        }
        DbCommand::Status => {
            let revisions = schema::status(&conn).await?;
            println!("backend: {}", cfg.backend.name());
            for r in &revisions {
                println!(
                    "{:>3}  {:<28} {}",
                    r.number,
                    r.name,
                    if r.applied { "applied" } else { "pending" }
                );
            }
            let applied = revisions.iter().filter(|r| r.applied).count();
            println!("{applied} of {} applied", revisions.len());
        }
        DbCommand::Check => {
            let p = db::probe(&conn).await?;
            println!("backend: {}", p.backend);
            println!("server version: {}", p.server_version);
            println!("latency: {:.2} ms", p.latency.as_secs_f64() * 1000.0);
        }
        DbCommand::Reset { yes } => {
            if !yes {
                return Err(Error::Usage(
                    "db reset drops every table and all data; run it again with --yes".into(),
                ));
            }
            schema::reset(&conn).await?;
            println!("schema dropped and re-created");
        }
        DbCommand::Backup { file } => match cfg.backend {
            Backend::Sqlite => {
                let bytes = backup::sqlite_backup(&conn, &file).await?;
                println!("backed up to {} ({bytes} bytes)", file.display());
            }
            _ => {
                if let Some(command) = backup::dump_command(cfg, &file, false) {
                    println!("{command}");
                }
            }
        },
        DbCommand::Restore { .. } => unreachable!("handled above"),
    }
    conn.close().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}
