//! Retention (CONTRACT §11): `--retention`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use verihook_testkit::{Receiver, Reply, TestPki};

const WAIT: Duration = Duration::from_secs(15);

/// With a retention of one second, a delivered event answers 404 soon after it expires;
/// an event still being retried outlives the retention until its last attempt fails,
/// then goes too.
#[tokio::test]
async fn expired_events_go_but_pending_ones_wait_for_their_delivery() {
    let pki = TestPki::new();
    let up = Receiver::https(&pki).await;
    let down = Receiver::https(&pki).await;
    down.always(Reply::Status(500));
    let retention = |c: &mut verihook_server::config::ServeConfig| {
        c.retention = verihook_server::config::parse_retention("1s").expect("valid");
    };
    let app = TestApp::delivering_with(&pki, "3s", retention, Default::default()).await;
    let (fine, _) = app.org_sending_to(&up.url).await;
    let (failing, _) = app.org_sending_to(&down.url).await;
    let delivered = app.customer(&fine).await;
    let pending = app.customer(&failing).await;
    let delivered = app
        .newest_event_id(&fine, Some(&text(&delivered["id"])))
        .await;
    let pending = app
        .newest_event_id(&failing, Some(&text(&pending["id"])))
        .await;
    let created = Instant::now();

    let gone = |org, id: &str| {
        let path = format!("/v1/events/{id}");
        app.as_org(org, Method::GET, &path).send()
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let status = gone(&fine, &delivered).await.expect("sent").status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "the delivered event was never purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "delivered event purged {:?} after its change",
        created.elapsed()
    );
    // Its retry is 3 s away: past the retention, it is still pending, and still there.
    let shown = expect(
        app.as_org(&failing, Method::GET, &format!("/v1/events/{pending}")),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["deliveryStatus"], "pending", "{shown}");
    let listed = expect(app.as_org(&fine, Method::GET, "/v1/events"), StatusCode::OK).await;
    assert_eq!(
        listed["data"],
        serde_json::json!([]),
        "gone from the log too"
    );

    let deadline = Instant::now() + WAIT;
    loop {
        let response = gone(&failing, &pending).await.expect("sent");
        if response.status() == StatusCode::NOT_FOUND {
            break;
        }
        let shown: serde_json::Value = response.json().await.expect("JSON");
        let status = shown["deliveryStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            status == "pending" || status == "failed",
            "kept while pending, then failed: {shown}"
        );
        assert!(
            Instant::now() < deadline,
            "the failed event was never purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        down.received().len() >= 2,
        "its last attempt was made before it went"
    );
}
