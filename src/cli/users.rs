//! `gatehouse users list|unlock`: small admin helpers.

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
