//! The event stream (CONTRACT §10): each event as the exact signed webhook request,
//! resumable with `Last-Event-ID`, bounded per organization.

use crate::helpers::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use verihook_receiver::Verifier;

/// An open stream and what it has delivered so far.
struct Stream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

/// One message: its `id:` and its `data:` parsed.
struct Message {
    id: String,
    data: Value,
}

impl Stream {
    async fn open(app: &TestApp, org: &Org, last_event_id: Option<&str>) -> Self {
        let mut request = app.as_org(org, Method::GET, "/v1/events/stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().ok(),
            Some("text/event-stream")
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next `n` messages (comments skipped), or a panic after 15 s.
    async fn take(&mut self, n: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got = Vec::new();
        while got.len() < n {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_owned)
                };
                if let (Some(id), Some(data)) = (field("id: "), field("data: ")) {
                    let data = serde_json::from_str(&data).expect("data is JSON");
                    got.push(Message { id, data });
                }
            }
            if got.len() >= n {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} messages within 15 s", got.len()))
                .expect("the stream is open")
                .expect("a chunk");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
        got
    }
}

async fn customers(app: &TestApp, org: &Org, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(text(&app.customer(org).await["id"]));
    }
    ids
}

/// Each event arrives as the webhook request: headers signed with the default endpoint's
/// secret over the exact body; after a disconnect, `Last-Event-ID` brings every event made
/// meanwhile, once, in order.
#[tokio::test]
async fn events_stream_signed_and_resume_after_a_disconnect() {
    let app = TestApp::spawn_with(|c| c.allow_http = true).await;
    let (org, secret) = app
        .org_sending_to("http://127.0.0.1:9/webhooks/verification")
        .await;
    let verifier = Verifier::new(&secret);
    let mut stream = Stream::open(&app, &org, None).await;
    let made = customers(&app, &org, 3).await;
    let first = stream.take(3).await;
    for (message, customer) in first.iter().zip(&made) {
        let headers = message.data["headers"].as_object().expect("headers");
        let body = message.data["body"].as_str().expect("body");
        let header = |name: &str| headers.get(name).and_then(Value::as_str);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(verifier
            .check_request_at(now, header, body.as_bytes())
            .is_ok());
        assert_eq!(header("x-webhook-event-id"), Some(message.id.as_str()));
        assert_eq!(header("content-type"), Some("application/json"));
        let parsed: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(parsed["payload"]["customerId"], customer.as_str());
    }
    drop(stream);

    let meanwhile = customers(&app, &org, 50).await;
    let last = first.last().expect("three").id.clone();
    let mut resumed = Stream::open(&app, &org, Some(&last)).await;
    let replayed = resumed.take(50).await;
    let customers_of = |ms: &[Message]| -> Vec<String> {
        ms.iter()
            .map(|m| {
                let body: Value =
                    serde_json::from_str(m.data["body"].as_str().expect("body")).expect("JSON");
                text(&body["payload"]["customerId"])
            })
            .collect()
    };
    assert_eq!(
        customers_of(&replayed),
        meanwhile,
        "every one, once, in order"
    );
    let next = customers(&app, &org, 1).await;
    assert_eq!(
        customers_of(&resumed.take(1).await),
        next,
        "then live again"
    );
}

#[tokio::test]
async fn a_stream_needs_a_webhook_a_known_event_and_a_free_place() {
    let app = TestApp::spawn_with(|c| c.allow_http = true).await;
    let bare = app.org("sandbox").await;
    let refused = expect(
        app.as_org(&bare, Method::GET, "/v1/events/stream"),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["error"]["code"], "webhook_not_configured");
    let (org, _) = app
        .org_sending_to("http://127.0.0.1:9/webhooks/verification")
        .await;
    let unknown = app
        .as_org(&org, Method::GET, "/v1/events/stream")
        .header("last-event-id", "evt_nope");
    let refused = expect(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"]["field"], "Last-Event-ID");
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(Stream::open(&app, &org, None).await);
    }
    expect(
        app.as_org(&org, Method::GET, "/v1/events/stream"),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = app
            .as_org(&org, Method::GET, "/v1/events/stream")
            .send()
            .await
            .expect("sent");
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
