//! `gatehouse sessions cleanup`: purge expired and revoked sessions and spent one-time tokens.

use crate::Error;
use crate::config::Config;

pub(super) async fn cleanup(config: Config) -> Result<(), Error> {
    let deleted = super::accounts(&config)
        .await?
        .cleanup_sessions(None)
        .await?;
    println!("deleted {deleted} row(s)");
    Ok(())
}
