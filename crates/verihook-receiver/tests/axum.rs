//! The axum extractor, served on a random port and called over HTTP.
#![cfg(feature = "axum")]

use axum::extract::FromRef;
use axum::routing::post;
use axum::Router;
use std::time::{SystemTime, UNIX_EPOCH};
use verihook_receiver::axum::VerifiedEvent;
use verihook_receiver::{signature, standard_webhooks, Scheme, Verifier};

const SECRET: &str = "whsec_axum";
const BODY: &str = r#"{"type":"verification.rfi_required","payload":{"customerId":"cus_1","previousStatus":"UNDER_REVIEW","newStatus":"NEEDS_ADDITIONAL_INFORMATION","customerType":"INDIVIDUAL","email":"a@example.com","reason":"Proof of address","updatedAt":"2025-11-05T11:00:00Z"},"metadata":{"eventId":"evt_rfi","occurredAt":"2025-11-05T11:00:00Z","organizationId":"org_1"}}"#;

#[derive(Clone)]
struct State {
    verifier: Verifier,
}

impl FromRef<State> for Verifier {
    fn from_ref(state: &State) -> Verifier {
        state.verifier.clone()
    }
}

async fn handler(VerifiedEvent(event): VerifiedEvent) -> String {
    format!(
        "{} {}",
        event.event_type(),
        event.event_id().unwrap_or_default()
    )
}

async fn serve() -> String {
    serve_with(Verifier::new(SECRET)).await
}

async fn serve_with(verifier: Verifier) -> String {
    let app = Router::new()
        .route("/hook", post(handler))
        .with_state(State { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

async fn post_with(url: &str, body: &str, ts: Option<i64>, sig: Option<String>) -> (u16, String) {
    let mut request = reqwest::Client::new().post(url).body(body.to_owned());
    if let Some(ts) = ts {
        request = request.header("X-Webhook-Timestamp", ts.to_string());
    }
    if let Some(sig) = sig {
        request = request.header("X-Webhook-Signature", sig);
    }
    let response = request.send().await.expect("sent");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

#[tokio::test]
async fn the_handler_gets_only_verified_typed_events() {
    let url = serve().await;
    let t = now();
    let good = signature::sign(SECRET.as_bytes(), t, BODY.as_bytes());
    let (status, text) = post_with(&url, BODY, Some(t), Some(good.clone())).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "verification.rfi_required evt_rfi")
    );

    let tampered = BODY.replace("Proof", "No proof");
    let cases = [
        post_with(&url, &tampered, Some(t), Some(good.clone())).await,
        post_with(&url, BODY, None, Some(good.clone())).await,
        post_with(&url, BODY, Some(t), None).await,
        post_with(
            &url,
            BODY,
            Some(t - 3_600),
            Some(signature::sign(
                SECRET.as_bytes(),
                t - 3_600,
                BODY.as_bytes(),
            )),
        )
        .await,
        post_with(
            &url,
            BODY,
            Some(t),
            Some(signature::sign(b"whsec_wrong", t, BODY.as_bytes())),
        )
        .await,
    ];
    for (status, text) in cases {
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("\"error\""), "{text}");
    }
    let not_an_event = "[1,2,3]";
    let sig = signature::sign(SECRET.as_bytes(), t, not_an_event.as_bytes());
    assert_eq!(
        post_with(&url, not_an_event, Some(t), Some(sig)).await.0,
        400
    );
}

#[tokio::test]
async fn a_standard_webhooks_verifier_reads_its_own_headers() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let url = serve_with(Verifier::new(secret).with_scheme(Scheme::StandardWebhooks)).await;
    let key = standard_webhooks::key(secret).expect("base64");
    let t = now();
    let send = |body: &str| {
        reqwest::Client::new()
            .post(&url)
            .header("webhook-id", "evt_rfi")
            .header("webhook-timestamp", t.to_string())
            .header(
                "webhook-signature",
                standard_webhooks::sign(&key, "evt_rfi", t, BODY.as_bytes()),
            )
            .body(body.to_owned())
            .send()
    };
    let genuine = send(BODY).await.expect("sent");
    assert_eq!(genuine.status().as_u16(), 200);
    let tampered = send(&BODY.replace("Proof", "Pr00f")).await.expect("sent");
    assert_eq!(tampered.status().as_u16(), 401);
}
