//! `gatehouse roles seed`: create or update the built-in roles.

use crate::Error;
use crate::config::Config;

pub(super) async fn seed(config: Config) -> Result<(), Error> {
    let (created, updated) = super::accounts(&config).await?.seed_roles().await?;
    println!("roles seeded: {created} created, {updated} updated");
    Ok(())
}
