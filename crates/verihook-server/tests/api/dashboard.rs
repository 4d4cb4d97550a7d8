//! The dashboard end to end in headless Chromium: log in with the API key, see a delivered
//! and a failed event, filter to failed events, open the failed one, press Redeliver, see
//! the new attempt; filters, pages, the receiver check, the live view.
//!
//! Needs Chromium (Debian: `apt-get install chromium`). Without it the test says so and
//! passes, unless `VERIHOOK_REQUIRE_BROWSER=1` (CI sets it), when it fails.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use verihook_testkit::browser::{chromium, Browser};
use verihook_testkit::{Receiver, Reply, TestPki};

const WAIT: Duration = Duration::from_secs(15);

fn browser_binary() -> Option<String> {
    let found = chromium();
    if found.is_none() {
        let required = std::env::var("VERIHOOK_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "VERIHOOK_REQUIRE_BROWSER=1 but no chromium is installed"
        );
        eprintln!("dashboard test skipped: no chromium installed (apt-get install chromium)");
    }
    found
}

/// The dashboard open in Chromium, logged in with `org`'s API key.
async fn logged_in(chromium: &str, app: &TestApp, org: &Org) -> Browser {
    let mut page = Browser::open(chromium, &format!("{}/dashboard", app.base)).await;
    // The tab starts on about:blank: log in once the dashboard has set up its handlers.
    let log_in = format!(
        "(() => {{ const input = document.getElementById('api-key'); \
         if (!input || document.body.dataset.ready !== 'true') return false; \
         input.value = '{}'; document.querySelector('#login button').click(); return true; }})()",
        org.key
    );
    page.wait_until(&log_in, "the login form", WAIT).await;
    page
}

/// Sets the events filter `field` to `value` and applies the filters.
async fn filter(page: &mut Browser, field: &str, value: &str) {
    page.eval(&format!(
        "document.getElementById('{field}').value = '{value}'; \
         document.querySelector('#filters button[type=submit]').click(); true"
    ))
    .await;
}

/// Keeps failed events failed, for recovering them by hand.
async fn auto_recover_off(app: &TestApp, org: &Org) {
    let endpoints = expect(
        app.as_org(org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    let default = format!("/v1/endpoints/{}", text(&endpoints["data"][0]["id"]));
    expect(
        app.as_org(org, Method::PATCH, &default)
            .json(&serde_json::json!({ "autoRecover": false })),
        StatusCode::OK,
    )
    .await;
}

/// A failing endpoint shows "Recover all"; pressing it redelivers every failed event and
/// shows the recovery's progress until it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_all_brings_back_a_failing_endpoints_events() {
    let Some(chromium) = browser_binary() else {
        return;
    };
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(500));
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    auto_recover_off(&app, &org).await;
    let mut failed = Vec::new();
    for _ in 0..3 {
        let c = text(&app.customer(&org).await["id"]);
        let event = app.newest_event_id(&org, Some(&c)).await;
        app.wait_for_status(&org, &event, "failed").await;
        failed.push(event);
    }
    receiver.always(Reply::Status(200));
    let mut page = logged_in(&chromium, &app, &org).await;
    page.wait_until(
        "(() => { const b = document.querySelector('#endpoints button.recover'); \
         if (!b) return false; b.click(); return true; })()",
        "the failing endpoint's Recover all button",
        WAIT,
    )
    .await;
    page.wait_until(
        "document.getElementById('recovery-status').textContent.includes('3 of 3 delivered') && \
         document.getElementById('recovery-status').textContent.endsWith('completed')",
        "the recovery's progress, completed",
        WAIT,
    )
    .await;
    for event in &failed {
        app.wait_for_status(&org, event, "delivered").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_see_events_and_redeliver_a_failed_one() {
    let Some(chromium) = browser_binary() else {
        return;
    };
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    // One attempt per event: the first fails for good, the second is delivered.
    receiver.script([Reply::Status(500)]);
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    // Left failed for the redelivery by hand (autoRecover would bring it back itself).
    auto_recover_off(&app, &org).await;
    let filtered = serde_json::json!({
        "url": "https://crm.example.com/hooks",
        "eventTypes": ["verification.completed"],
        "signatureScheme": "standard-webhooks",
        "disabled": true
    });
    let crm = expect(
        app.as_org(&org, Method::POST, "/v1/endpoints")
            .json(&filtered),
        StatusCode::CREATED,
    )
    .await;
    let failed = text(&app.customer(&org).await["id"]);
    let failed_event = app.newest_event_id(&org, Some(&failed)).await;
    app.wait_for_status(&org, &failed_event, "failed").await;
    let delivered = text(&app.customer(&org).await["id"]);
    let delivered_event = app.newest_event_id(&org, Some(&delivered)).await;
    app.wait_for_status(&org, &delivered_event, "delivered")
        .await;

    let mut page = logged_in(&chromium, &app, &org).await;
    let row_status = |id: &str| {
        format!("(document.querySelector('tr[data-id=\"{id}\"] .status') || {{}}).textContent")
    };
    page.wait_until(
        &format!(
            "{} === 'failed' && {} === 'delivered'",
            row_status(&failed_event),
            row_status(&delivered_event)
        ),
        "both events listed with their delivery status",
        WAIT,
    )
    .await;
    page.wait_until(
        &format!(
            "document.getElementById('webhook-url').textContent === '{}'",
            receiver.url
        ),
        "the webhook URL shown",
        WAIT,
    )
    .await;
    let crm_row = |cell: &str| {
        format!(
            "(document.querySelector('tr.endpoint[data-id=\"{}\"] .{cell}') || {{}}).textContent",
            text(&crm["id"])
        )
    };
    page.wait_until(
        &format!(
            "document.querySelectorAll('#endpoints tr.endpoint').length === 2 && \
             {} === 'verification.completed' && {} === 'standard-webhooks' && \
             ({} || '').startsWith('healthy')",
            crm_row("filter"),
            crm_row("scheme"),
            crm_row("health")
        ),
        "both endpoints listed with their filter, scheme and health",
        WAIT,
    )
    .await;
    page.wait_until(
        "document.getElementById('chart-summary').textContent.startsWith('2 attempts') && \
         document.getElementById('chart-summary').textContent.includes('2 events made, 1 delivered')",
        "the chart's summary of the hour, with events made beside those delivered",
        WAIT,
    )
    .await;

    // Filtered to failed events: the failed one alone, then opened.
    filter(&mut page, "filter-status", "failed").await;
    page.wait_until(
        &format!(
            "document.querySelectorAll('#events tr.event').length === 1 && \
             !!document.querySelector('#events tr.event[data-id=\"{failed_event}\"]')"
        ),
        "only the failed event listed",
        WAIT,
    )
    .await;
    page.eval(&format!(
        "document.querySelector('tr[data-id=\"{failed_event}\"]').click(); true"
    ))
    .await;
    page.wait_until(
        "document.querySelectorAll('#attempts tr.attempt').length === 1 && \
         document.querySelector('#attempts tr.attempt').cells[2].textContent === '500'",
        "the failed attempt shown with its status",
        WAIT,
    )
    .await;
    // Email addresses are masked until asked for.
    page.wait_until(
        "document.getElementById('detail-body').textContent.includes('\"j•••@example.com\"') && \
         !document.getElementById('detail-body').textContent.includes('jane.smith@')",
        "the email masked in the body shown",
        WAIT,
    )
    .await;
    page.eval("document.getElementById('show-emails').click(); true")
        .await;
    page.wait_until(
        "document.getElementById('detail-body').textContent.includes('jane.smith@example.com')",
        "the email shown when asked for",
        WAIT,
    )
    .await;
    page.eval("document.getElementById('redeliver').click(); true")
        .await;
    page.wait_until(
        "document.querySelectorAll('#attempts tr.attempt').length === 2 && \
         document.querySelectorAll('#attempts tr.attempt')[1].cells[2].textContent === '200' && \
         document.getElementById('detail-status').textContent === 'delivered'",
        "the redelivery's attempt shown as delivered",
        WAIT,
    )
    .await;
    let shown = app.wait_for_status(&org, &failed_event, "delivered").await;
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let response = app.request(Method::GET, path).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}"
        );
    }
}

/// Where the end-to-end test leaves a screenshot of each view (CI lists them).
fn screenshots() -> std::path::PathBuf {
    std::env::var_os("VERIHOOK_SCREENSHOTS").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/dashboard-screenshots")
        },
        std::path::PathBuf::from,
    )
}

/// The dashboard as integrators work in it: filter events and page through them, open one
/// with the request headers of its attempts, run a receiver check and read its report,
/// follow the live stream, read the chart's axes, copy ids; a screenshot of each view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_page_check_and_follow_live() {
    let Some(chromium) = browser_binary() else {
        return;
    };
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let first = text(&app.customer(&org).await["id"]);
    expect(
        app.as_org(&org, Method::PATCH, &format!("/v1/customers/{first}"))
            .json(&serde_json::json!({ "firstName": "Janet" })),
        StatusCode::OK,
    )
    .await;
    for _ in 0..25 {
        app.customer(&org).await;
    }
    let mut page = logged_in(&chromium, &app, &org).await;
    let rows = "document.querySelectorAll('#events tr.event').length";
    page.wait_until(
        &format!("{rows} === 25 && !document.getElementById('page-older').disabled"),
        "a first page of 25 events, and an older one",
        WAIT,
    )
    .await;
    page.screenshot(&screenshots().join("1-events.png")).await;
    page.eval("document.getElementById('page-older').click(); true")
        .await;
    page.wait_until(
        &format!("{rows} === 2 && document.getElementById('page-info').textContent === 'page 2'"),
        "the older page",
        WAIT,
    )
    .await;
    filter(&mut page, "filter-type", "customer.updated").await;
    page.wait_until(
        &format!(
            "{rows} === 1 && document.querySelector('#events tr.event').cells[1].textContent \
             === 'customer.updated'"
        ),
        "only the customer.updated event",
        WAIT,
    )
    .await;
    filter(&mut page, "filter-status", "failed").await;
    page.wait_until(
        &format!("{rows} === 0 && !document.getElementById('events-empty').hidden"),
        "no failed customer.updated event",
        WAIT,
    )
    .await;
    page.eval("document.getElementById('filter-clear').click(); true")
        .await;
    filter(&mut page, "filter-customer", &first).await;
    page.wait_until(
        &format!("{rows} === 2"),
        "the first customer's two events",
        WAIT,
    )
    .await;
    page.eval("document.querySelector('#events tr.event').click(); true")
        .await;
    page.wait_until(
        "document.querySelectorAll('#attempts tr.attempt details.request').length >= 1 && \
         document.querySelector('#attempts details.request pre').textContent \
           .includes('X-Webhook-Timestamp: ') && \
         document.querySelectorAll('#events button.copy').length === 2",
        "the event's attempt with its request headers, and copy buttons",
        WAIT,
    )
    .await;
    page.screenshot(&screenshots().join("2-event.png")).await;

    page.eval("document.querySelector('#endpoints button.check').click(); true")
        .await;
    page.wait_until(
        "document.querySelectorAll('#check-report tr.check-line').length === 12 && \
         document.getElementById('check-summary').textContent.startsWith('FAIL: 8 passed, 4 failed')",
        "the receiver check's report (the test receiver takes anything: 4 failures)",
        WAIT,
    )
    .await;
    page.screenshot(&screenshots().join("3-check.png")).await;

    page.wait_until(
        "[...document.querySelectorAll('#chart text')].map((t) => t.textContent).join('|') \
           .includes('100 %') && \
         [...document.querySelectorAll('#chart text')].some((t) => t.textContent === 'now')",
        "the chart's labelled axes",
        WAIT,
    )
    .await;
    page.eval("document.getElementById('live-toggle').click(); true")
        .await;
    page.wait_until(
        "document.getElementById('live-status').textContent === 'live'",
        "the live view connected",
        WAIT,
    )
    .await;
    let later = text(&app.customer(&org).await["id"]);
    let event = app.newest_event_id(&org, Some(&later)).await;
    page.wait_until(
        &format!("!!document.querySelector('#live li[data-id=\"{event}\"]')"),
        "the new event in the live view",
        WAIT,
    )
    .await;
    page.screenshot(&screenshots().join("4-live.png")).await;
}
