//! `gatehouse admin create`: create or promote a super_admin; the password comes from a terminal prompt or stdin, never an argument.

use std::io::{IsTerminal, Read};

use crate::Error;
use crate::config::Config;
use crate::service::accounts::AdminOutcome;

fn read_password(from_stdin: bool) -> Result<String, Error> {
    if from_stdin {
        let mut raw = String::new();
        std::io::stdin().read_to_string(&mut raw)?;
        let password = raw.strip_suffix('\n').unwrap_or(&raw);
        let password = password.strip_suffix('\r').unwrap_or(password);
        return Ok(password.to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "standard input is not a terminal: pass --password-stdin and pipe the password".into(),
        ));
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        return Err(Error::Usage("the passwords do not match".into()));
    }
    Ok(first)
}

pub(super) async fn create(config: Config, email: &str, password_stdin: bool) -> Result<(), Error> {
    let accounts = super::accounts(&config).await?;
    let password = if accounts.exists(email).await? {
        None
    } else {
        Some(read_password(password_stdin)?)
    };
    let outcome = accounts
        .ensure_super_admin(email, password.as_deref())
        .await?;
    match outcome {
        AdminOutcome::Created => println!("created super_admin {}", email.trim()),
        AdminOutcome::Promoted => println!(
            "promoted {} to super_admin (password unchanged)",
            email.trim()
        ),
        AdminOutcome::AlreadySuperAdmin => println!("{} is already a super_admin", email.trim()),
    }
    Ok(())
}
