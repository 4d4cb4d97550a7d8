//! `TestApp::spawn()`: the real server on a random port with a fresh database, driven over
//! HTTP with reqwest. The database is a SQLite file, or a PostgreSQL database when
//! `VERIHOOK_TEST_DATABASE=postgres`: the same tests run on both backends.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use verihook_server::config::parse_schedule;
use verihook_server::delivery::Limits;
use verihook_server::{ServeConfig, Server};
use verihook_testkit::{TestDatabase, TestPki};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    _db: TestDatabase,
}

pub struct Org {
    pub id: String,
    pub key: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::spawn_with_limits(configure, Limits::default()).await
    }

    /// A server that delivers to receivers of `pki` on loopback, with a short retry
    /// schedule (`schedule`, e.g. `"50ms,100ms"`).
    pub async fn delivering(pki: &TestPki, schedule: &str) -> Self {
        Self::delivering_with(pki, schedule, |_| {}, Limits::default()).await
    }

    pub async fn delivering_with(
        pki: &TestPki,
        schedule: &str,
        configure: impl FnOnce(&mut ServeConfig),
        limits: Limits,
    ) -> Self {
        let ca = pki.ca_pem_path.clone();
        let schedule = parse_schedule(schedule).expect("a schedule");
        let configure = move |c: &mut ServeConfig| {
            c.allow_private_networks = true;
            c.extra_ca_cert = Some(ca);
            c.retry_schedule = schedule;
            configure(c);
        };
        Self::spawn_with_limits(configure, limits).await
    }

    pub async fn spawn_with_limits(
        configure: impl FnOnce(&mut ServeConfig),
        limits: Limits,
    ) -> Self {
        verihook_testkit::log::init();
        let db = TestDatabase::from_env().await;
        let mut config = ServeConfig::new(db.url());
        config.admin_token = Some(ADMIN_TOKEN.into());
        configure(&mut config);
        let server = Server::build_with_limits(&config, limits)
            .await
            .expect("server builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(server.serve(listener, shutdown.clone().cancelled_owned()));
        Self {
            base,
            client: reqwest::Client::new(),
            shutdown,
            _db: db,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    pub fn as_org(&self, org: &Org, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(&org.key)
    }

    pub async fn org(&self, mode: &str) -> Org {
        let body = json!({ "name": format!("{mode} org"), "mode": mode });
        let created = expect(
            self.admin(Method::POST, "/v1/admin/organizations")
                .json(&body),
            StatusCode::CREATED,
        )
        .await;
        Org {
            id: text(&created["id"]),
            key: text(&created["apiKey"]),
        }
    }

    /// A live organization whose webhook goes to `url`; returns it with the secret.
    pub async fn org_sending_to(&self, url: &str) -> (Org, String) {
        let org = self.org("sandbox").await;
        let path = format!("/v1/admin/organizations/{}/webhook", org.id);
        let set = expect(
            self.admin(Method::PUT, &path).json(&json!({ "url": url })),
            StatusCode::OK,
        )
        .await;
        (org, text(&set["secret"]))
    }

    /// The id of the organization's newest event (of `customer_id`'s, when given).
    pub async fn newest_event_id(&self, org: &Org, customer_id: Option<&str>) -> String {
        let path = match customer_id {
            Some(c) => format!("/v1/events?customerId={c}"),
            None => "/v1/events".to_owned(),
        };
        let page = expect(self.as_org(org, Method::GET, &path), StatusCode::OK).await;
        text(&page["data"][0]["id"])
    }

    /// Polls `GET /v1/events/{id}` until its delivery status is `status`.
    pub async fn wait_for_status(&self, org: &Org, event_id: &str, status: &str) -> Value {
        let path = format!("/v1/events/{event_id}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let event = expect(self.as_org(org, Method::GET, &path), StatusCode::OK).await;
            if event["deliveryStatus"] == status {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "{event_id} never became {status}: {event}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn customer(&self, org: &Org) -> Value {
        expect(
            self.as_org(org, Method::POST, "/v1/customers")
                .json(&jane()),
            StatusCode::CREATED,
        )
        .await
    }

    /// A customer of `org`, moved to UNDER_REVIEW by completing its data.
    pub async fn customer_under_review(&self, org: &Org) -> Value {
        let c = self.customer(org).await;
        let path = format!("/v1/customers/{}", text(&c["id"]));
        expect(
            self.as_org(org, Method::PATCH, &path)
                .json(&complete_data()),
            StatusCode::OK,
        )
        .await
    }

    /// The event types of a customer, oldest first.
    pub async fn event_types(&self, org: &Org, customer_id: &str) -> Vec<String> {
        let path = format!("/v1/events?customerId={customer_id}&limit=100");
        let page = expect(self.as_org(org, Method::GET, &path), StatusCode::OK).await;
        let mut types: Vec<String> = page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| text(&e["type"]))
            .collect();
        types.reverse();
        types
    }
}

pub fn jane() -> Value {
    json!({
        "type": "INDIVIDUAL",
        "email": "jane.smith@example.com",
        "firstName": "Jane",
        "lastName": "Smith"
    })
}

pub fn complete_data() -> Value {
    json!({
        "dateOfBirth": "1990-04-01",
        "address": { "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE" }
    })
}

pub fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// Sends the request, asserts the status, and returns the JSON body.
pub async fn expect(request: RequestBuilder, status: StatusCode) -> Value {
    let response: Response = request.send().await.expect("request sent");
    let actual = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(actual, status, "body: {body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON body, got: {body}"))
    }
}

/// Asserts an error response: status, the contract's body, and the field it names.
pub async fn expect_error(
    request: RequestBuilder,
    status: StatusCode,
    field: Option<&str>,
) -> Value {
    let body = expect(request, status).await;
    let error = &body["error"];
    assert!(error["code"].is_string(), "error.code in {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error.message in {body}"
    );
    assert_eq!(error["field"].as_str(), field, "error.field in {body}");
    body
}
