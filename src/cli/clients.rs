//! `gatehouse clients create|list|delete`: the OpenID clients that sign their users in through Gatehouse.

use crate::Error;
use crate::config::Config;
use crate::domain::client::ClientInfo;
use crate::service::provider::{Clients, NewClient};

/// What `clients create` takes.
#[derive(Debug, clap::Args)]
pub(super) struct CreateArgs {
    /// A name people see on the consent page.
    #[arg(long)]
    pub name: String,
    /// An exact redirect URI (repeat for several).
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// An exact post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (SPA, native app): no secret, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// A first-party client: no consent page.
    #[arg(long)]
    pub first_party: bool,
    /// Space-separated allowed scopes (default: openid email profile roles offline_access).
    #[arg(long)]
    pub scopes: Option<String>,
}

async fn clients(config: &Config) -> Result<Clients, Error> {
    Ok(Clients::new(super::database(config).await?))
}

fn cli_client() -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: Some("gatehouse-cli".into()),
    }
}

pub(super) async fn create(config: Config, args: CreateArgs) -> Result<(), Error> {
    let created = clients(&config)
        .await?
        .create_client(
            NewClient {
                name: args.name,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                public: args.public,
                first_party: args.first_party,
                scopes: args.scopes,
            },
            None,
            &cli_client(),
        )
        .await?;
    println!("client_id: {}", created.client.client_id);
    match &created.client_secret {
        Some(secret) => println!("client_secret: {secret}  (shown once: store it now)"),
        None => println!("public client: no secret; it must use PKCE (S256)"),
    }
    println!("scopes: {}", created.client.scopes);
    Ok(())
}

pub(super) async fn list(config: Config) -> Result<(), Error> {
    let list = clients(&config).await?.list_clients().await?;
    for c in list.clients {
        println!(
            "{}\t{}\t{}{}\t{}\t{}",
            c.client_id,
            c.name,
            if c.public { "public" } else { "confidential" },
            if c.first_party { ",first-party" } else { "" },
            c.scopes,
            c.redirect_uris.join(" ")
        );
    }
    Ok(())
}

pub(super) async fn delete(config: Config, client_id: &str) -> Result<(), Error> {
    clients(&config)
        .await?
        .delete_client(client_id, None, &cli_client())
        .await
        .map_err(|e| match e {
            crate::service::ServiceError::NotFound => {
                Error::Usage(format!("no client {client_id}"))
            }
            other => other.into(),
        })?;
    println!("deleted client {client_id}");
    Ok(())
}
