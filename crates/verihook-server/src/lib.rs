//! # verihook-server
//!
//! `verihook serve`: the HTTP API of the KYC webhook platform, on the store of
//! `verihook-store`. A status change and its events are written in one transaction (the
//! outbox); the delivery engine sends what the outbox holds.
//!
//! ## Layout
//! - [`config`]: the flags and `VERIHOOK_*` variables of `verihook serve`.
//! - [`api`]: the routes of CONTRACT §2, one module per resource, one error type.
//! - [`dev`]: the sandbox organization `--dev` creates for trying things out.
//!
//! [`Server::build`] opens the database and prepares everything; [`Server::serve`] runs it
//! on a listener until a shutdown future resolves, so tests bind port 0 and stop it at will.

pub mod api;
pub mod config;
pub mod dev;

pub use config::ServeConfig;

use api::{AppState, Auth};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use verihook_store::{Store, StoreError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("could not create the development sandbox: {0:?}")]
    Dev(api::ApiError),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Server {
    state: AppState,
    dev: Option<dev::DevSandbox>,
}

impl Server {
    /// Opens the database (applying migrations) and, with `--dev`, creates the sandbox.
    pub async fn build(config: &ServeConfig) -> Result<Self, ServerError> {
        let store = verihook_store::connect(&config.database_url).await?;
        let admin_token = match (&config.admin_token, config.dev) {
            (Some(token), _) => Some(token.clone()),
            (None, true) => Some(dev::admin_token()),
            (None, false) => None,
        };
        let state = AppState {
            store,
            auth: Arc::new(Auth::new(admin_token.as_deref())),
            allow_http: config.allows_http(),
        };
        let dev = match (config.dev, admin_token) {
            (true, Some(token)) => Some(
                dev::DevSandbox::create(&state, token)
                    .await
                    .map_err(ServerError::Dev)?,
            ),
            _ => None,
        };
        Ok(Self { state, dev })
    }

    /// The sandbox `--dev` created, to print for the user.
    pub fn dev_sandbox(&self) -> Option<&dev::DevSandbox> {
        self.dev.as_ref()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves the API on `listener` until `shutdown` resolves, then finishes the requests
    /// in flight and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = api::router(self.state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
