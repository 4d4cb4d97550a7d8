//! One webhook attempt over HTTP(S): sign, POST, read the answer, classify the outcome.
//!
//! The client is hyper's pooled client over rustls (measured ~2× cheaper per request than
//! reqwest on this class of machine), with keep-alive connections per host, certificates
//! verified against Mozilla's roots plus `--extra-ca-cert`, no proxy from the environment,
//! no redirects followed, and one timeout over everything from connecting to the last byte
//! of the response.

use super::guard::{check_literal, GuardedResolver, ResolveError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use verihook_core::{
    headers, signature, standard_webhooks, ErrorClass, SignatureScheme, Timestamp, WebhookSecret,
    WebhookUrl,
};

use verihook_store::ClaimedDelivery;

/// At most this much of a response body is kept in the attempt log.
pub const RESPONSE_EXCERPT: usize = 4 * 1024;
/// A response body is read up to this size (to let the connection be reused), then dropped.
const RESPONSE_READ_LIMIT: usize = 64 * 1024;
const USER_AGENT_VALUE: &str = concat!("verihook/", env!("CARGO_PKG_VERSION"));

type HttpsClient<R> = Client<HttpsConnector<HttpConnector<R>>, Full<Bytes>>;

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("--extra-ca-cert {path}: {message}")]
    ExtraCa { path: String, message: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub started_at: Timestamp,
    pub duration: Duration,
    pub status_code: Option<u16>,
    pub failure: Option<(ErrorClass, String)>,
    pub response_excerpt: Option<String>,
}

impl AttemptResult {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

pub struct Sender {
    /// For webhook URLs: through the SSRF guard.
    guarded: HttpsClient<GuardedResolver>,
    /// For the operator's own alert URL, which may well be on a private network.
    operator: HttpsClient<GuardedResolver>,
    timeout: Duration,
    allow_private: bool,
    /// Whether `http://` URLs may be sent to: judged at each attempt, so that URLs stored
    /// while the operator allowed it are refused once `--allow-http` is off.
    allow_http: bool,
}

fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, SenderError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let fail = |message: String| SenderError::ExtraCa {
            path: path.display().to_string(),
            message,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    // The provider is named explicitly so that no process-wide default is needed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn client(
    tls: rustls::ClientConfig,
    allow_private: bool,
    timeout: Duration,
) -> HttpsClient<GuardedResolver> {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        // Up to every slot's connection: several organizations' endpoints can sit behind
        // one host, and a connection closed after each request costs a new TCP (and TLS)
        // handshake for the next one.
        .pool_max_idle_per_host(super::Limits::default().in_flight)
        .build(https)
}

/// One webhook request to make: the stored body, where it goes, how it is signed.
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub url: &'a WebhookUrl,
    pub secret: &'a WebhookSecret,
    /// A rotation's replaced secret, while its overlap runs.
    pub previous: Option<&'a WebhookSecret>,
    pub scheme: SignatureScheme,
    pub attempt: u32,
    /// `X-Webhook-Sequence`: the event's place among its customer's events (0: a test
    /// event, about no customer).
    pub sequence: u64,
}

impl Sender {
    pub fn new(
        timeout: Duration,
        allow_private: bool,
        extra_ca: Option<&Path>,
    ) -> Result<Self, SenderError> {
        let tls = tls_config(extra_ca)?;
        Ok(Self {
            guarded: client(tls.clone(), allow_private, timeout),
            operator: client(tls, true, timeout),
            timeout,
            allow_private,
            allow_http: false,
        })
    }

    /// Lets webhooks go to `http://` URLs (`--allow-http`).
    pub fn allowing_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Signs and POSTs the delivery's stored body, exactly as stored.
    pub async fn send(&self, d: &ClaimedDelivery) -> AttemptResult {
        self.send_webhook(Outgoing {
            event_id: d.event.id.as_str(),
            event_type: d.event.event_type.as_str(),
            body: &d.event.body,
            url: &d.url,
            secret: &d.secret,
            previous: d.previous_secret.as_ref(),
            scheme: d.scheme,
            attempt: d.attempt,
            sequence: d.event.sequence,
        })
        .await
    }

    /// Signs and POSTs a webhook, timing it and classifying what came back.
    pub async fn send_webhook(&self, webhook: Outgoing<'_>) -> AttemptResult {
        let started_at = Timestamp::now();
        let headers = webhook_headers(&webhook, started_at.unix_seconds());
        timed(
            started_at,
            self.post(webhook.url, &headers, webhook.body.as_bytes()),
        )
        .await
    }

    /// POSTs `body` to `url` with exactly `headers` (the receiver check's requests, some
    /// signed wrongly on purpose), under the same guard as a delivery.
    pub async fn send_request(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> AttemptResult {
        timed(Timestamp::now(), self.post(url, headers, body)).await
    }

    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Result<(u16, Option<String>), (ErrorClass, String)> {
        let uri = url.uri().clone();
        if uri.scheme_str() == Some("http") && !self.allow_http {
            return Err((
                ErrorClass::Blocked,
                "plain http:// is not allowed on this server (--allow-http is off)".into(),
            ));
        }
        if let Some(host) = uri.host() {
            check_literal(host, self.allow_private)
                .map_err(|e| (ErrorClass::Blocked, e.to_string()))?;
        }
        let mut request = Request::builder().method(Method::POST).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| (ErrorClass::Connect, format!("invalid request: {e}")))?;
        self.round_trip(&self.guarded, request).await
    }

    /// The request and the whole response, under one timeout.
    async fn round_trip(
        &self,
        client: &HttpsClient<GuardedResolver>,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Option<String>), (ErrorClass, String)> {
        let exchange = async {
            let response = client.request(request).await.map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            let excerpt = read_excerpt(response.into_body()).await;
            Ok((status, excerpt))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err((
                    ErrorClass::Timeout,
                    format!(
                        "no complete response within {} ms",
                        self.timeout.as_millis()
                    ),
                ))
            })
    }

    /// POSTs a JSON document to an operator-configured URL (alerts); no SSRF guard.
    /// Signed as a webhook (verihook's scheme) when a secret is given.
    pub async fn post_json(
        &self,
        url: &str,
        body: String,
        secret: Option<&WebhookSecret>,
    ) -> Result<u16, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(secret) = secret {
            let timestamp = Timestamp::now().unix_seconds();
            request = request.header(headers::TIMESTAMP, timestamp).header(
                headers::SIGNATURE,
                signature::sign(secret.key(), timestamp, body.as_bytes()),
            );
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.round_trip(&self.operator, request)
            .await
            .map(|(status, _)| status)
            .map_err(|(class, message)| format!("{}: {message}", class.as_str()))
    }
}

/// Times `exchange`, started at `started_at`, and classifies what came back.
async fn timed(
    started_at: Timestamp,
    exchange: impl std::future::Future<Output = Result<(u16, Option<String>), (ErrorClass, String)>>,
) -> AttemptResult {
    let clock = Instant::now();
    let outcome = exchange.await;
    let duration = clock.elapsed();
    match outcome {
        Ok((status, excerpt)) if (200..300).contains(&status) => AttemptResult {
            started_at,
            duration,
            status_code: Some(status),
            failure: None,
            response_excerpt: excerpt,
        },
        Ok((status, excerpt)) => AttemptResult {
            started_at,
            duration,
            status_code: Some(status),
            failure: Some((ErrorClass::Status, status_message(status))),
            response_excerpt: excerpt,
        },
        Err(failure) => AttemptResult {
            started_at,
            duration,
            status_code: None,
            failure: Some(failure),
            response_excerpt: None,
        },
    }
}

/// Every header of the webhook request of `d` signed at `timestamp` (unix seconds), in the
/// order sent; the event stream (CONTRACT §10) carries exactly these.
pub fn webhook_headers(d: &Outgoing<'_>, timestamp: i64) -> Vec<(&'static str, String)> {
    let mut all = vec![
        (CONTENT_TYPE.as_str(), "application/json".to_owned()),
        (USER_AGENT.as_str(), USER_AGENT_VALUE.to_owned()),
    ];
    all.extend(signature_headers(d, timestamp, d.body.as_bytes()));
    all.push((headers::EVENT_TYPE, d.event_type.to_owned()));
    all.push((headers::ATTEMPT, d.attempt.to_string()));
    all.push((headers::SEQUENCE, d.sequence.to_string()));
    all
}

/// The signature headers of the endpoint's scheme: verihook's own (§3), or Standard
/// Webhooks' (`webhook-id`, `webhook-timestamp`, `webhook-signature`). During a
/// rotation's overlap, verihook's scheme signs `X-Webhook-Signature` with the previous
/// secret (receivers not yet updated keep working) and `X-Webhook-Signature-Next` with
/// the new one; Standard Webhooks lists both signatures, the new one first.
fn signature_headers(d: &Outgoing<'_>, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    match d.scheme {
        SignatureScheme::Verihook => {
            let sign = |secret: &WebhookSecret| signature::sign(secret.key(), timestamp, body);
            let mut signed = vec![
                (headers::TIMESTAMP, timestamp.to_string()),
                (headers::EVENT_ID, d.event_id.to_owned()),
            ];
            match d.previous {
                Some(previous) => signed.extend([
                    (headers::SIGNATURE, sign(previous)),
                    (headers::SIGNATURE_NEXT, sign(d.secret)),
                ]),
                None => signed.push((headers::SIGNATURE, sign(d.secret))),
            }
            signed
        }
        SignatureScheme::StandardWebhooks => {
            let sign = |secret: &WebhookSecret| {
                // Every generated secret is base64 after its prefix; one that is not (set
                // outside verihook) is keyed with its bytes, as verihook's scheme keys.
                let key = secret
                    .standard_key()
                    .unwrap_or_else(|| secret.key().to_vec());
                standard_webhooks::sign(&key, d.event_id, timestamp, body)
            };
            let signatures = match d.previous {
                Some(previous) => format!("{} {}", sign(d.secret), sign(previous)),
                None => sign(d.secret),
            };
            vec![
                (standard_webhooks::headers::ID, d.event_id.to_owned()),
                (standard_webhooks::headers::TIMESTAMP, timestamp.to_string()),
                (standard_webhooks::headers::SIGNATURE, signatures),
            ]
        }
    }
}

fn status_message(status: u16) -> String {
    if (300..400).contains(&status) {
        format!("HTTP {status}: redirects are not followed")
    } else {
        format!("HTTP {status}")
    }
}

/// The first [`RESPONSE_EXCERPT`] bytes of the body (lossy UTF-8), reading on up to
/// [`RESPONSE_READ_LIMIT`] so that a small body leaves the connection reusable.
async fn read_excerpt(mut body: hyper::body::Incoming) -> Option<String> {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read < RESPONSE_READ_LIMIT {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            read += data.len();
            let room = RESPONSE_EXCERPT.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned())
}

/// Sorts a client error into the classes of the attempt log, with a short message.
fn classify(error: &hyper_util::client::legacy::Error) -> (ErrorClass, String) {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    let mut innermost = error.to_string();
    while let Some(e) = current {
        if let Some(resolve) = e.downcast_ref::<ResolveError>() {
            let class = match resolve {
                ResolveError::Blocked { .. } => ErrorClass::Blocked,
                _ => ErrorClass::Dns,
            };
            return (class, resolve.to_string());
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return (ErrorClass::Tls, format!("TLS: {tls}"));
        }
        innermost = e.to_string();
        // io::Error's source() skips the error it wraps (rustls errors arrive that way,
        // sometimes twice wrapped), so step into it explicitly.
        let wrapped = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static));
        current = wrapped.or_else(|| e.source());
    }
    (ErrorClass::Connect, truncate(innermost, 300))
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
