//! # verihook-testkit
//!
//! What the tests of the delivery engine need and must not mock: a CA generated per test
//! run ([`TestPki`]) and real webhook receivers on loopback ([`Receiver`]), HTTPS or plain
//! HTTP, that record every request and answer as a test scripts them (status codes,
//! delays, redirects); and a fresh database per test ([`TestDatabase`]), SQLite or
//! PostgreSQL.

pub mod browser;
mod database;
pub mod log;
mod private_postgres;

pub use database::{postgres_available, postgres_selected, postgres_server, TestDatabase};
pub use private_postgres::{PostgresSetup, PrivatePostgres};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, LOCATION};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

/// A CA made for this test run and a certificate it signed for `localhost`, `127.0.0.1`
/// and `::1`. The CA's PEM is written to a file, as `--extra-ca-cert` wants it.
pub struct TestPki {
    pub ca_pem_path: PathBuf,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let leaf = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_pem_path = dir.path().join("ca.pem");
        std::fs::write(&ca_pem_path, ca.pem()).expect("CA written");
        Self {
            ca_pem_path,
            leaf: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
            _dir: dir,
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], key)
            .expect("server config");
        TlsAcceptor::from(Arc::new(config))
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// Waits, then answers with the status.
    Delay(Duration, u16),
    /// 302 to the given location.
    Redirect(String),
    /// A receiver that takes about this many requests a second (a token bucket holding a
    /// fifth of a second's worth) and answers 503 to the rest.
    Capacity(u32),
}

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The status it was answered with (for a redirect, 302).
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    arrived: Notify,
    bucket: Mutex<Option<Bucket>>,
}

/// [`Reply::Capacity`]'s tokens.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl State {
    /// Whether a receiver of `per_second` capacity takes one more request now.
    fn takes(&self, per_second: u32) -> bool {
        let rate = f64::from(per_second);
        let burst = (rate / 5.0).max(1.0);
        let mut bucket = lock(&self.bucket);
        let b = bucket.get_or_insert(Bucket {
            tokens: burst,
            at: Instant::now(),
        });
        let now = Instant::now();
        b.tokens = (b.tokens + rate * (now - b.at).as_secs_f64()).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A webhook receiver on a random loopback port. Answers 200 unless scripted otherwise.
pub struct Receiver {
    /// `https://localhost:PORT/webhooks/verification` (or `http://127.0.0.1:…`).
    pub url: String,
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Receiver {
    /// An HTTPS receiver with a certificate of `pki`.
    pub async fn https(pki: &TestPki) -> Self {
        Self::start(Some(pki.acceptor()), "https://localhost", 0).await
    }

    /// An HTTPS receiver that fails every other TLS handshake (the connection is closed
    /// as the client's hello arrives) and closes each connection after its answer, so
    /// that every request needs a handshake of its own.
    pub async fn https_failing_half_the_handshakes(pki: &TestPki) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(State::default());
        let task = tokio::spawn(flaky_tls_loop(listener, pki.acceptor(), state.clone()));
        Self {
            url: format!("https://localhost:{port}/webhooks/verification"),
            port,
            state,
            task,
        }
    }

    /// A plain HTTP receiver (for `--allow-http` set-ups).
    pub async fn http() -> Self {
        Self::start(None, "http://127.0.0.1", 0).await
    }

    /// A plain HTTP receiver on a chosen port (to bring a "down" endpoint back up).
    pub async fn http_on(port: u16) -> Self {
        Self::start(None, "http://127.0.0.1", port).await
    }

    /// A plain HTTP receiver on `address` (one a test's network namespace reaches).
    pub async fn http_at(address: std::net::Ipv4Addr) -> Self {
        Self::start_at(address, None, &format!("http://{address}"), 0).await
    }

    async fn start(tls: Option<TlsAcceptor>, origin: &str, port: u16) -> Self {
        Self::start_at(std::net::Ipv4Addr::LOCALHOST, tls, origin, port).await
    }

    async fn start_at(
        address: std::net::Ipv4Addr,
        tls: Option<TlsAcceptor>,
        origin: &str,
        port: u16,
    ) -> Self {
        let listener = TcpListener::bind((address, port)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(State::default());
        let task = tokio::spawn(accept_loop(listener, tls, state.clone()));
        Self {
            url: format!("{origin}:{port}/webhooks/verification"),
            port,
            state,
            task,
        }
    }

    /// Answers the next requests with `replies`, in order, then as before.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    /// Answers every request not scripted with `reply`.
    pub fn always(&self, reply: Reply) {
        *lock(&self.state.default) = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// Waits until at least `n` requests arrived, or panics at the deadline.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let end = Instant::now() + deadline;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} requests within {deadline:?}",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn flaky_tls_loop(listener: TcpListener, tls: TlsAcceptor, state: Arc<State>) {
    let mut n = 0u64;
    while let Ok((mut tcp, _)) = listener.accept().await {
        n += 1;
        let fail = n.is_multiple_of(2);
        let (tls, state) = (tls.clone(), state.clone());
        tokio::spawn(async move {
            if fail {
                // The hello arrives, and the connection ends: the client's handshake fails.
                let mut hello = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut hello).await;
                return;
            }
            // One request per connection: every delivery makes a new handshake.
            serve_one(tcp, Some(tls), state, false).await;
        });
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<State>) {
    while let Ok((tcp, _)) = listener.accept().await {
        tokio::spawn(serve_one(tcp, tls.clone(), state.clone(), true));
    }
}

/// Serves one accepted connection, over TLS when given an acceptor.
async fn serve_one(tcp: TcpStream, tls: Option<TlsAcceptor>, state: Arc<State>, keep_alive: bool) {
    let service = service_fn(move |req| handle(state.clone(), req));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(keep_alive);
    match tls {
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(tcp).await {
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            }
        }
        None => {
            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
        }
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = request.into_body().collect().await?.to_bytes();
    let reply = lock(&state.script)
        .pop_front()
        .or_else(|| lock(&state.default).clone())
        .unwrap_or(Reply::Status(200));
    let reply = match reply {
        Reply::Capacity(per_second) if state.takes(per_second) => Reply::Status(200),
        Reply::Capacity(_) => Reply::Status(503),
        other => other,
    };
    let answered = match &reply {
        Reply::Status(code) | Reply::Delay(_, code) => *code,
        Reply::Redirect(_) => 302,
        Reply::Capacity(_) => 503,
    };
    lock(&state.received).push(Received {
        path,
        headers,
        body,
        at: Instant::now(),
        status: answered,
    });
    state.arrived.notify_waiters();
    let response = match reply {
        Reply::Status(code) => status(code),
        Reply::Delay(wait, code) => {
            tokio::time::sleep(wait).await;
            status(code)
        }
        Reply::Redirect(location) => {
            let mut r = status(302);
            if let Ok(value) = location.parse() {
                r.headers_mut().insert(LOCATION, value);
            }
            r
        }
        Reply::Capacity(_) => status(503),
    };
    Ok(response)
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"received\":true}")));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response
}
