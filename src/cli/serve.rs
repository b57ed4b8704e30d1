//! `gatehouse serve`: connect, migrate, bootstrap, listen, and stop gracefully on SIGINT/SIGTERM.

use crate::config::Config;
use crate::{Error, Gatehouse};

pub async fn run(config: Config, no_migrate: bool) -> Result<(), Error> {
    let bind = config.bind;
    let gh = Gatehouse::connect(config).await?;
    if !no_migrate {
        let applied = gh.migrate().await?;
        tracing::info!(applied, "migrations up to date");
    }
    gh.bootstrap().await?;
    // Refuse to start rather than fail (or hand out garbage) on every encrypted value later.
    gh.integrations()
        .check_master_key()
        .await
        .map_err(|e| crate::config::ConfigError::new("ENCRYPTION_MASTER_KEY", e))?;
    // ID tokens signed with a key made for this process do not verify on another instance or
    // after a restart: say so when there are clients to receive them.
    let jwt = &gh.config().jwt;
    if jwt.algorithm == crate::config::JwtAlgorithm::HS256
        && jwt.oidc_signing_key_file.is_none()
        && gh.config().dev_jwt_key_path().is_none()
    {
        let clients = gh.provider().clients().list_clients().await?.clients.len();
        if clients > 0 {
            tracing::warn!(
                clients,
                "OIDC_SIGNING_KEY_FILE is not set and JWT_ALGORITHM is HS256: ID tokens are signed with a key made for this process, which other instances and the next start do not know; set one of them"
            );
        }
    }
    let oauth = &gh.config().oauth;
    let configured = oauth.google_client_id.is_some()
        || oauth.github_client_id.is_some()
        || !oauth.providers.is_empty();
    match (oauth.enabled, configured) {
        (true, false) => tracing::warn!(
            "OAUTH_ENABLED is true but no provider is configured (GOOGLE_CLIENT_ID, GITHUB_CLIENT_ID, OAUTH_PROVIDERS)"
        ),
        (false, true) => tracing::warn!(
            "sign-in providers are configured but OAUTH_ENABLED is false: none is served"
        ),
        (true, true) => {
            let names: Vec<String> = gh
                .oauth()
                .providers()
                .providers
                .into_iter()
                .map(|p| p.name)
                .collect();
            tracing::info!(providers = %names.join(","), "sign-in through outside providers is on");
        }
        (false, false) => {}
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = gh.config().database.backend.name(), "gatehouse listening");
    println!("gatehouse listening on http://{addr}");
    gh.serve(listener, shutdown_signal()).await?;
    tracing::info!("gatehouse stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
