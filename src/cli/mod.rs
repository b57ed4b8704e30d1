//! The `gatehouse` command line: clap definitions and dispatch; each command group is a few lines over the service and store layers.

mod admin;
mod clients;
mod db;
mod keys;
mod roles;
mod serve;
mod sessions;
mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Error;
use crate::config::{Config, JwtAlgorithm, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Self-hosted authentication and user management"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
        /// Print the effective configuration (secrets masked) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Database schema and maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// The role catalogue.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Keys for the configuration.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// OpenID clients: apps that sign their users in through Gatehouse.
    #[command(subcommand)]
    Clients(ClientsCommand),
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Register a client and print its client_id and (confidential clients) its secret, once.
    Create(clients::CreateArgs),
    /// List the registered clients (never their secrets).
    List,
    /// Delete a client, the sessions issued to it and its consents.
    Delete {
        /// The client's client_id.
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create the database if needed and apply every migration.
    Init,
    /// Apply pending migrations (all, or up to REV).
    Upgrade {
        #[arg(long, value_name = "REV")]
        to: Option<String>,
    },
    /// Revert migrations down to REV (0 = empty schema).
    Downgrade {
        #[arg(long, value_name = "REV")]
        to: String,
    },
    /// List migrations, applied or pending.
    Status,
    /// Connect, run a trivial query, print backend, version and latency.
    Check,
    /// Drop everything and re-create the schema.
    Reset {
        #[arg(long)]
        yes: bool,
    },
    /// Consistent copy of an SQLite database (prints the dump command for PostgreSQL/MySQL).
    Backup { file: PathBuf },
    /// Replace the SQLite database with a backup (prints the restore command for PostgreSQL/MySQL).
    Restore { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum RolesCommand {
    /// Create or update the five built-in roles (idempotent).
    Seed,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a super_admin, or promote an existing account.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// List accounts.
    List {
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Clear an account's lockout.
    Unlock { email: String },
    /// Create accounts from another system's user export, keeping their password hashes
    /// (docs/operations.md, "Moving in"). Accounts whose email exists are left as they are.
    Import {
        /// The export file.
        file: PathBuf,
        #[arg(long, value_parser = ["jsonl", "csv", "mongoexport"])]
        format: String,
        /// A JSON file naming source fields and roles (see docs/operations.md).
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
        /// Check every record against the database and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the refused records (line and reason) to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Accounts per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
    },
    /// Write every account as JSON Lines (never a TOTP secret, recovery code or token).
    Export {
        #[arg(long, value_parser = ["jsonl"], default_value = "jsonl")]
        format: String,
        /// Include each password hash (the file is then as sensitive as the database).
        #[arg(long)]
        with_hashes: bool,
        /// Write to FILE (created with mode 0600) instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Delete expired and revoked sessions and spent one-time tokens.
    Cleanup,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a fresh JWT secret and encryption master key.
    Generate,
    /// Re-encrypt every secret (integration keys, TOTP secrets) under ENCRYPTION_MASTER_KEY,
    /// opening old values with ENCRYPTION_READ_KEYS; safe while servers run, and to run again.
    Rotate {
        /// Values read and re-encrypted per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Stop after this many batches (spread a large move over several runs).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        batches: Option<u64>,
    },
    /// Make the next JWT signing key and print the variables to set: the new key, and every key
    /// signing or verifying now as JWT_PREVIOUS_SECRETS / JWT_PREVIOUS_KEY_FILES.
    RotateJwt {
        /// Algorithm of the new key (default: JWT_ALGORITHM): HS256, EdDSA, ES256 or RS256.
        #[arg(long, value_parser = parse_algorithm)]
        algorithm: Option<JwtAlgorithm>,
        /// Where to write the new private key (asymmetric algorithms; never overwritten).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn parse_algorithm(raw: &str) -> Result<JwtAlgorithm, String> {
    JwtAlgorithm::parse(raw)
        .ok_or_else(|| format!("expected one of {}", JwtAlgorithm::names().join(", ")))
}

/// Set up logging from the configuration (stderr, so command output stays clean on stdout).
fn init_logging(config: &Config) {
    log_to(config, std::io::stderr);
}

/// Log as the configuration says (`LOG_FORMAT`, `RUST_LOG`) into `writer`, for the rest of the
/// process (nothing, if a subscriber is already set): what the server does on stderr, and the
/// benchmarks into a file, so their figures include it.
pub fn log_to<W>(config: &Config, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

fn load_config() -> Result<Config, Error> {
    let config = Config::load()?;
    init_logging(&config);
    Ok(config)
}

/// Run one command line to completion.
pub async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Keys(KeysCommand::Generate) => {
            keys::generate();
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate {
            batch_size,
            batches,
        }) => keys::rotate(load_config()?, batch_size, batches).await,
        Command::Keys(KeysCommand::RotateJwt { algorithm, out }) => {
            keys::rotate_jwt(load_config()?, algorithm, out.as_deref())
        }
        Command::Serve {
            no_migrate,
            print_config,
        } => {
            let config = Config::load()?;
            if print_config {
                print!("{}", config.render_masked());
                return Ok(());
            }
            init_logging(&config);
            serve::run(config, no_migrate).await
        }
        Command::Db(cmd) => db::run(load_config()?, cmd).await,
        Command::Roles(RolesCommand::Seed) => roles::seed(load_config()?).await,
        Command::Admin(AdminCommand::Create {
            email,
            password_stdin,
        }) => admin::create(load_config()?, &email, password_stdin).await,
        Command::Users(UsersCommand::List { limit }) => users::list(load_config()?, limit).await,
        Command::Users(UsersCommand::Unlock { email }) => {
            users::unlock(load_config()?, &email).await
        }
        Command::Users(UsersCommand::Import {
            file,
            format,
            map,
            dry_run,
            report,
            batch_size,
        }) => {
            let args = users::ImportArgs {
                file,
                format,
                map,
                dry_run,
                report,
                batch_size: batch_size as usize,
            };
            users::import(load_config()?, args).await
        }
        Command::Users(UsersCommand::Export {
            format: _,
            with_hashes,
            output,
        }) => users::export(load_config()?, with_hashes, output).await,
        Command::Sessions(SessionsCommand::Cleanup) => sessions::cleanup(load_config()?).await,
        Command::Clients(ClientsCommand::Create(args)) => {
            clients::create(load_config()?, args).await
        }
        Command::Clients(ClientsCommand::List) => clients::list(load_config()?).await,
        Command::Clients(ClientsCommand::Delete { client_id }) => {
            clients::delete(load_config()?, &client_id).await
        }
    }
}

/// The services over the configured database, for commands that need them (no migration, no
/// JWT key). A database whose schema is missing or behind is refused with the command to run.
async fn accounts(config: &Config) -> Result<crate::service::accounts::Accounts, Error> {
    let db = database(config).await?;
    let hasher = crate::crypto::password::PasswordHasher::new(&config.password)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(crate::service::accounts::Accounts::new(
        db,
        hasher,
        config.password.policy(),
    ))
}

/// The configured database, refused with the command to run when its schema is missing or behind.
async fn database(config: &Config) -> Result<sea_orm::DatabaseConnection, Error> {
    let db = crate::store::db::connect(&config.database).await?;
    let revisions = crate::store::schema::status(&db).await?;
    let pending = revisions.iter().filter(|r| !r.applied).count();
    if pending == revisions.len() {
        return Err(Error::Usage(
            "the database has no Gatehouse schema yet: run `gatehouse db init` first".into(),
        ));
    }
    if pending > 0 {
        return Err(Error::Usage(format!(
            "{pending} migration(s) are pending: run `gatehouse db upgrade` first"
        )));
    }
    Ok(db)
}
