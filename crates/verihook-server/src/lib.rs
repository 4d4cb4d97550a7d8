//! # verihook-server
//!
//! `verihook serve`: the HTTP API of the KYC webhook platform, on the store of
//! `verihook-store`. A status change and its events are written in one transaction (the
//! outbox); the delivery engine sends what the outbox holds.
//!
//! ## Layout
//! - [`config`]: the flags and `VERIHOOK_*` variables of `verihook serve`.
//! - [`api`]: the routes of CONTRACT §2, one module per resource, one error type.
//! - [`delivery`]: the engine that sends the outbox as signed webhooks.
//! - [`dev`]: the sandbox organization `--dev` creates for trying things out.
//!
//! [`Server::build`] opens the database and prepares everything; [`Server::serve`] runs it
//! on a listener until a shutdown future resolves, so tests bind port 0 and stop it at will.

pub mod admission;
pub mod api;
pub mod check;
pub mod config;
pub mod delivery;
pub mod dev;
pub mod http;
pub mod metrics;
pub mod retention;

pub use config::ServeConfig;

use admission::Admission;
use api::at_once::AtOnce;
use api::rate_limit::RateLimiter;
use api::{AppState, Auth, Shared};
use delivery::{DeliveryEngine, Limits, Sender, SenderError};
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use verihook_store::secrets::SecretKey;
use verihook_store::{Storage, StoreError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("could not create the development sandbox: {0:?}")]
    Dev(api::ApiError),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sender(#[from] SenderError),
    #[error("{0}")]
    Config(String),
}

/// The key webhook secrets are sealed with: `--secret-key`, or with `--dev` the one kept
/// beside the SQLite file (made on the first run); without either, none, and a warning.
fn secret_key(config: &ServeConfig) -> Result<Option<SecretKey>, ServerError> {
    if let Some(key) = &config.secret_key {
        return SecretKey::parse(key)
            .map(Some)
            .map_err(|e| ServerError::Config(format!("--secret-key: {e}")));
    }
    if config.dev {
        if let Some(key) = dev::secret_key_beside(&config.database_url)? {
            return Ok(Some(key));
        }
    }
    tracing::warn!(
        "no --secret-key: webhook secrets are stored in plaintext in the database; \
         set VERIHOOK_SECRET_KEY to 32 random bytes in base64 to seal them"
    );
    Ok(None)
}

pub struct Server {
    state: AppState,
    engine: Option<Arc<DeliveryEngine>>,
    role: config::Role,
    dev: Option<dev::DevSandbox>,
    /// The engine's limit per organization, which the lag leaves out organizations at.
    per_endpoint: u32,
    http: http::HttpLimits,
    request_timeout: std::time::Duration,
    /// Sends the operator's alerts (on delivering nodes).
    alerts: Option<delivery::alerts::AlertSender>,
    /// How long events are kept (`None`: forever).
    retention: Option<std::time::Duration>,
}

impl Server {
    /// Opens the database (applying migrations) and, with `--dev`, creates the sandbox.
    pub async fn build(config: &ServeConfig) -> Result<Self, ServerError> {
        Self::build_with_limits(config, Limits::default()).await
    }

    /// [`Server::build`] with the delivery engine's concurrency limits chosen.
    pub async fn build_with_limits(
        config: &ServeConfig,
        limits: Limits,
    ) -> Result<Self, ServerError> {
        let sender = Arc::new(
            Sender::new(
                config.delivery_timeout,
                config.allows_private_networks(),
                config.extra_ca_cert.as_deref(),
            )?
            .allowing_http(config.allows_http()),
        );
        let key = secret_key(config)?;
        let store = verihook_store::connect_with(&config.database_url, key.as_ref()).await?;
        let metrics = Arc::new(Metrics::new());
        let engine = config.role.delivers().then(|| {
            Arc::new(DeliveryEngine::new(
                store.outbox.clone(),
                sender.clone(),
                config.retry_schedule.clone(),
                config.delivery_timeout,
                limits,
                metrics.clone(),
            ))
        });
        let alerts = config
            .role
            .delivers()
            .then(|| delivery::alerts::AlertSender {
                alerts: store.alerts.clone(),
                sender: sender.clone(),
                url: config.alert_webhook_url.as_ref().map(|u| u.to_string()),
                secret: config
                    .alert_secret
                    .clone()
                    .map(verihook_core::WebhookSecret::from_stored),
                interval: config.alert_interval,
                metrics: metrics.clone(),
            });
        let admin_token = match (&config.admin_token, config.dev) {
            (Some(token), _) => Some(token.clone()),
            (None, true) => Some(dev::admin_token()),
            (None, false) => None,
        };
        let state = AppState::new(Shared {
            store,
            auth: Arc::new(Auth::new(admin_token.as_deref())),
            allow_http: config.allows_http(),
            admission: Arc::new(Admission::new(config.max_lag, metrics.clone())),
            metrics,
            sender,
            test_sends: Arc::new(AtOnce::new(3, "test events")),
            streams: Arc::new(AtOnce::new(5, "event streams")),
            stopping: CancellationToken::new(),
            rate_limit: Arc::new(RateLimiter::new(config.rate_limit)),
            admin_rate_limit: Arc::new(RateLimiter::new(config.admin_rate_limit)),
        });
        let dev = match (config.dev, admin_token) {
            (true, Some(token)) => Some(
                dev::DevSandbox::create(&state, token)
                    .await
                    .map_err(ServerError::Dev)?,
            ),
            _ => None,
        };
        Ok(Self {
            state,
            engine,
            role: config.role,
            dev,
            per_endpoint: u32::try_from(limits.per_endpoint).unwrap_or(u32::MAX),
            http: http::HttpLimits {
                header_read_timeout: config.header_read_timeout,
                max_connections: config.max_connections,
                shutdown_timeout: config.shutdown_timeout,
            },
            request_timeout: config.request_timeout,
            alerts,
            retention: config.retention.0,
        })
    }

    /// The sandbox `--dev` created, to print for the user.
    pub fn dev_sandbox(&self) -> Option<&dev::DevSandbox> {
        self.dev.as_ref()
    }

    pub fn store(&self) -> Storage {
        self.state.store.clone()
    }

    /// Serves the API on `listener` and runs the delivery engine until `shutdown`
    /// resolves; then stops accepting requests, finishes those in flight, lets attempts in
    /// flight finish within a grace period (releasing the rest for retry) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let stop = self.state.stopping.clone();
        let engine = self.engine.map(|e| tokio::spawn(e.run(stop.clone())));
        tokio::spawn(admission::monitor(
            self.state.admission.clone(),
            self.state.store.outbox.clone(),
            self.per_endpoint,
            stop.clone(),
        ));
        tokio::spawn(metrics::sample_outbox(
            self.state.metrics.clone(),
            self.state.store.outbox.clone(),
            stop.clone(),
        ));
        if let Some(alerts) = self.alerts {
            tokio::spawn(alerts.run(stop.clone()));
        }
        let keys = tokio::spawn(api::auth::watch_keys(
            self.state.auth.clone(),
            self.state.store.api_keys.clone(),
            stop.clone(),
        ));
        tokio::spawn(api::gate::purge_answers(
            self.state.store.idempotency.clone(),
            stop.clone(),
        ));
        if let Some(keep) = self.retention {
            tokio::spawn(retention::purge(
                self.state.store.retention.clone(),
                keep,
                self.state.metrics.clone(),
                stop.clone(),
            ));
        }
        let app = if self.role.serves_api() {
            api::router(self.state)
        } else {
            api::health_router(self.state)
        };
        let app = api::with_timeouts(app, self.http.header_read_timeout, self.request_timeout);
        let trigger = stop.clone();
        let shutdown = async move {
            shutdown.await;
            trigger.cancel();
        };
        // The engine drains while the HTTP side does, both within the shutdown timeout
        // (the engine's lease release gets a moment more).
        http::serve(listener, app, self.http, shutdown).await;
        stop.cancel();
        if let Some(task) = engine {
            let wait = self.http.shutdown_timeout + std::time::Duration::from_secs(2);
            match tokio::time::timeout(wait, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the delivery engine panicked"),
                Err(_) => tracing::warn!("the delivery engine did not stop in time; leaving"),
            }
        }
        // Bounded: the last write of key use must not hold the exit when the database is gone.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), keys).await;
        Ok(())
    }
}
