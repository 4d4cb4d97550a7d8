//! `verihook serve`.

use tokio::net::TcpListener;
use verihook_server::{ServeConfig, Server};

pub async fn run(config: ServeConfig) -> Result<(), String> {
    let server = Server::build(&config).await.map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // One plain line on stdout, for people and for scripts that start on port 0.
    println!("verihook listening on http://{address}");
    if let Some(sandbox) = server.dev_sandbox() {
        println!("{}", sandbox.banner(address));
    }
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("verihook stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
