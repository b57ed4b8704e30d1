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
