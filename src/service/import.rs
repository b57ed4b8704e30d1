//! Moving in and out: `users import` turns another system's user export into accounts (hashes kept as they are, TOTP secrets sealed, each batch one transaction, refused records reported by line), and `users export` hands accounts back out as JSON Lines without any secret.

use std::collections::HashMap;

use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use uuid::Uuid;

use super::error::ServiceError;
use super::views::UserView;
use crate::crypto::envelope::Envelope;
use crate::crypto::hash_formats;
use crate::domain::import::{Candidate, ImportMap, candidate};
use crate::domain::import_files::{Format, records};
use crate::store::audit::AuditEntry;
use crate::store::entities::users as user_rows;
use crate::store::{self, StoreError};

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    pub map: ImportMap,
    /// Check everything (the database included) and write nothing.
    pub dry_run: bool,
    /// Accounts per transaction.
    pub batch_size: usize,
}

/// A record left out, or one imported with something to know, and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineNote {
    pub line: usize,
    pub reason: String,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Records read from the file.
    pub records: usize,
    /// Accounts created (a dry run: that would be created).
    pub created: usize,
    /// Records whose email already has an account: left exactly as they are.
    pub present: usize,
    /// Records refused, with why; nothing of them was written.
    pub refused: Vec<LineNote>,
    /// Records imported with a caveat (TOTP on but no secret in the file).
    pub notes: Vec<LineNote>,
}

/// One account as `users export` writes it: the API's user shape (no TOTP secret, recovery
/// code or token ever), and the password hash only when asked for.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedUser {
    #[serde(flatten)]
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// Imports and exports over one database.
#[derive(Clone)]
pub struct Transfer {
    db: DatabaseConnection,
    envelope: Option<Envelope>,
}

impl Transfer {
    /// `envelope` seals imported TOTP secrets; without it, records carrying one are refused.
    pub fn new(db: DatabaseConnection, envelope: Option<Envelope>) -> Self {
        Self { db, envelope }
    }

    /// Check every record of `text`, then create the accounts whose email is free, `batch_size`
    /// per transaction (each account with its roles and TOTP secret, or nothing of it).
    /// `progress(done, total)` runs after each batch. A file that cannot be read as a whole is
    /// refused before anything is written.
    pub async fn import(
        &self,
        text: &str,
        options: &ImportOptions,
        progress: impl Fn(usize, usize),
    ) -> Result<ImportReport, ServiceError> {
        let records = records(options.format, text)
            .map_err(|e| ServiceError::invalid("file", "unreadable_file", e))?;
        let mut report = ImportReport {
            records: records.len(),
            ..Default::default()
        };
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut accepted: Vec<(usize, Candidate)> = Vec::with_capacity(records.len());
        for record in records {
            let line = record.line;
            match self.check(&options.map, record.fields, &first_line) {
                Ok(c) => {
                    first_line.insert(c.email.key().to_string(), line);
                    accepted.push((line, c));
                }
                Err(reason) => report.refused.push(LineNote { line, reason }),
            }
        }
        drop(first_line);
        let total = accepted.len();
        let mut done = 0;
        for (n, batch) in accepted.chunks(options.batch_size.max(1)).enumerate() {
            let keys: Vec<String> = batch.iter().map(|(_, c)| c.email.key().into()).collect();
            let present = store::users::existing_emails(&self.db, &keys).await?;
            let fresh: Vec<&(usize, Candidate)> = batch
                .iter()
                .filter(|(_, c)| !present.contains(c.email.key()))
                .collect();
            report.present += batch.len() - fresh.len();
            report.created += fresh.len();
            report.notes.extend(fresh.iter().filter_map(|(line, c)| {
                c.note.clone().map(|reason| LineNote {
                    line: *line,
                    reason,
                })
            }));
            if !options.dry_run && !fresh.is_empty() {
                let accounts: Vec<(user_rows::Model, Vec<String>)> =
                    fresh.iter().map(|(_, c)| self.account(c)).collect();
                self.write(&accounts).await?;
                // Each time the import has doubled what it wrote, so look-ups stay index scans.
                if (n + 1).is_power_of_two() {
                    store::users::refresh_statistics(&self.db).await?;
                }
            }
            done += batch.len();
            progress(done, total);
        }
        Ok(report)
    }

    /// Why a record cannot be imported, or the account it makes.
    fn check(
        &self,
        map: &ImportMap,
        fields: Result<serde_json::Map<String, serde_json::Value>, String>,
        first_line: &HashMap<String, usize>,
    ) -> Result<Candidate, String> {
        let c = candidate(map, &fields?)?;
        if let Some(hash) = &c.password_hash {
            hash_formats::recognise(hash).map_err(|why| format!("password_hash: {why}"))?;
        }
        if c.totp_secret.is_some() && self.envelope.is_none() {
            return Err(
                "totp_secret: ENCRYPTION_MASTER_KEY is not set, so TOTP secrets cannot be stored"
                    .into(),
            );
        }
        if let Some(first) = first_line.get(c.email.key()) {
            return Err(format!("email: the same address as line {first}"));
        }
        Ok(c)
    }

    /// The account a checked record makes, and its role names.
    fn account(&self, c: &Candidate) -> (user_rows::Model, Vec<String>) {
        let id = Uuid::now_v7();
        let now = store::now();
        let mfa_secret = match (&c.totp_secret, &self.envelope) {
            (Some(secret), Some(envelope)) => {
                Some(envelope.seal(secret, &super::mfa::sealed_for(id)))
            }
            _ => None,
        };
        let user = user_rows::Model {
            id,
            email: c.email.as_str().to_string(),
            email_lower: c.email.key().to_string(),
            password_hash: c.password_hash.clone(),
            name: c.name.clone(),
            active: c.active,
            deleted_at: None,
            email_verified: c.email_verified,
            email_verified_at: c.email_verified.then_some(now),
            failed_logins: 0,
            locked_until: None,
            last_login_at: c.last_login_at,
            mfa_enabled: mfa_secret.is_some(),
            mfa_secret,
            mfa_pending_secret: None,
            mfa_last_step: None,
            metadata: c.metadata.clone(),
            created_at: c.created_at.unwrap_or(now),
            updated_at: now,
        };
        (user, c.roles.iter().map(|r| r.name().to_string()).collect())
    }

    /// One batch in one transaction, with its audit row.
    async fn write(
        &self,
        accounts: &[(user_rows::Model, Vec<String>)],
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        match store::users::insert_imported(&txn, accounts).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(ServiceError::Conflict {
                    code: "email_taken",
                    detail: "an account with an email of this batch was created meanwhile; nothing of the batch was written: run the import again".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        store::audit::record(
            &txn,
            AuditEntry {
                event: "users_imported",
                detail: serde_json::json!({ "count": accounts.len() }),
                ..Default::default()
            },
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Up to `limit` live accounts after `after` (id order), as exported, and the id to continue
    /// after (`None` at the end).
    pub async fn export_page(
        &self,
        after: Option<Uuid>,
        limit: u64,
        with_hashes: bool,
    ) -> Result<(Vec<ExportedUser>, Option<Uuid>), ServiceError> {
        let rows = store::users::export_page(&self.db, after, limit).await?;
        let next = (rows.len() as u64 == limit)
            .then(|| rows.last().map(|(u, _)| u.id))
            .flatten();
        let users = rows
            .into_iter()
            .map(|(mut u, roles)| ExportedUser {
                password_hash: u.password_hash.take().filter(|_| with_hashes),
                user: UserView::new(u, roles),
            })
            .collect();
        Ok((users, next))
    }
}
