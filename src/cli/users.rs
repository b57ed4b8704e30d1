//! `gatehouse users list|unlock|import|export`: admin helpers, and moving accounts in from another system and out as JSON Lines.

use crate::Error;
use crate::config::Config;

pub(super) async fn list(config: Config, limit: u64) -> Result<(), Error> {
    let users = super::accounts(&config).await?.list(limit).await?;
    println!(
        "{:<36}  {:<32}  {:<24}  {:<8}  created",
        "id", "email", "roles", "state"
    );
    for u in &users {
        let state = if !u.active {
            "disabled"
        } else if u.locked {
            "locked"
        } else {
            "active"
        };
        println!(
            "{:<36}  {:<32}  {:<24}  {:<8}  {}",
            u.id,
            u.email,
            u.roles.join(","),
            state,
            u.created_at.format("%Y-%m-%dT%H:%M:%SZ")
        );
    }
    println!("{} user(s)", users.len());
    Ok(())
}

pub(super) async fn unlock(config: Config, email: &str) -> Result<(), Error> {
    super::accounts(&config)
        .await?
        .unlock(email)
        .await
        .map_err(|e| match e {
            crate::service::ServiceError::NotFound => {
                Error::Usage(format!("no account with email {}", email.trim()))
            }
            other => other.into(),
        })?;
    println!("unlocked {}", email.trim());
    Ok(())
}

/// `users import`'s arguments.
pub(super) struct ImportArgs {
    pub file: std::path::PathBuf,
    pub format: String,
    pub map: Option<std::path::PathBuf>,
    pub dry_run: bool,
    pub report: Option<std::path::PathBuf>,
    pub batch_size: usize,
}

fn read(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

pub(super) async fn import(config: Config, args: ImportArgs) -> Result<(), Error> {
    use crate::domain::import::ImportMap;
    use crate::domain::import_files::Format;
    use crate::service::import::{ImportOptions, Transfer};
    use std::io::{IsTerminal, Write};
    let format = Format::parse(&args.format)
        .ok_or_else(|| Error::Usage(format!("unknown format {}", args.format)))?;
    let map = match &args.map {
        Some(path) => ImportMap::from_json(&read(path)?)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?,
        None => ImportMap::default(),
    };
    let text = read(&args.file)?;
    let envelope = crate::crypto::envelope::Envelope::from_config(&config)?;
    let transfer = Transfer::new(super::database(&config).await?, envelope);
    let options = ImportOptions {
        format,
        map,
        dry_run: args.dry_run,
        batch_size: args.batch_size,
    };
    let bar = std::cell::OnceCell::new();
    let progress = |done: usize, total: usize| {
        if std::io::stderr().is_terminal() {
            bar.get_or_init(|| indicatif::ProgressBar::new(total as u64))
                .set_position(done as u64);
        }
    };
    let report = transfer.import(&text, &options, progress).await?;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    let mut lines = String::new();
    for r in &report.refused {
        lines.push_str(&format!("line {}: refused: {}\n", r.line, r.reason));
    }
    for n in &report.notes {
        lines.push_str(&format!("line {}: note: {}\n", n.line, n.reason));
    }
    match &args.report {
        Some(path) => std::fs::write(path, &lines)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?,
        None => std::io::stdout().write_all(lines.as_bytes())?,
    }
    let (created, prefix) = if args.dry_run {
        ("would be created", "dry run, nothing written: ")
    } else {
        ("created", "")
    };
    println!(
        "{prefix}{} record(s): {} {created}, {} unchanged (the email has an account already), {} refused",
        report.records,
        report.created,
        report.present,
        report.refused.len()
    );
    if !report.refused.is_empty() {
        return Err(Error::Usage(format!(
            "{} record(s) refused, each listed with its line{}; the others were {}",
            report.refused.len(),
            args.report
                .as_ref()
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default(),
            if args.dry_run { "checked" } else { "imported" }
        )));
    }
    Ok(())
}

pub(super) async fn export(
    config: Config,
    with_hashes: bool,
    output: Option<std::path::PathBuf>,
) -> Result<(), Error> {
    use crate::service::import::Transfer;
    use std::io::Write;
    let transfer = Transfer::new(super::database(&config).await?, None);
    let mut out: Box<dyn Write> = match &output {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(path)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after = None;
    let mut count = 0usize;
    loop {
        let (users, next) = transfer.export_page(after, 1000, with_hashes).await?;
        for u in &users {
            serde_json::to_writer(&mut out, u).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        count += users.len();
        match next {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    out.flush()?;
    if let Some(path) = output {
        println!("{count} user(s) written to {}", path.display());
    }
    Ok(())
}
