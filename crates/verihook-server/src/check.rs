//! The receiver check (CONTRACT §10): the product document's "webhook testing checklist"
//! as a grader. It sends a receiver real, signed requests (one per event type, an unknown
//! type, a duplicate) and deliberately wrong ones (another secret, a changed body, an old
//! timestamp, no signature), and grades each answer PASS, FAIL or WARN. `verihook check`
//! runs it from a developer's machine; `POST /v1/endpoints/{id}/check` from the server,
//! under the same SSRF guard as deliveries. Its events carry `X-Webhook-Check: true` and
//! customers that do not exist (`cus_check…`), so a receiver can tell them apart.

use crate::delivery::sender::{webhook_headers, AttemptResult, Outgoing, Sender};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;
use verihook_core::customer::{Email, Text};
use verihook_core::{
    Address, Customer, CustomerId, CustomerStatus, CustomerType, DomainError, Event, EventId,
    OrganizationId, SignatureScheme, Timestamp, WebhookSecret, WebhookUrl,
};

/// The header that marks the check's requests.
pub const CHECK_HEADER: &str = "x-webhook-check";
/// The checklist's bound on an answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How old the stale timestamp is: twice the usual 5-minute tolerance.
const STALE: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Warn,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What was checked, e.g. `customer.created answered 2xx within 10 s`.
    pub name: String,
    pub verdict: Verdict,
    /// Why, in a few words.
    pub detail: String,
    pub status_code: Option<u16>,
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub url: String,
    /// No check failed (warnings allowed).
    pub passed: bool,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub checks: Vec<Check>,
}

/// The receiver under check and how it verifies.
pub struct Target<'a> {
    pub url: &'a WebhookUrl,
    pub secret: &'a WebhookSecret,
    /// A rotation's replaced secret, while its overlap runs: it signs too, as in deliveries.
    pub previous: Option<&'a WebhookSecret>,
    pub scheme: SignatureScheme,
    pub organization: &'a OrganizationId,
}

/// One request of the check: an event's body, and the headers to send it with.
struct Sample {
    event_type: &'static str,
    id: EventId,
    /// Numbered as a real customer's events are, one after another.
    sequence: u64,
    body: String,
}

pub async fn run(sender: &Sender, target: &Target<'_>) -> Result<Report, DomainError> {
    let samples = samples(target.organization)?;
    let now = Timestamp::now().unix_seconds();
    let send = |sample: &Sample, secret: &WebhookSecret, timestamp: i64, body: &str| {
        let headers = signed(target, sample, secret, timestamp);
        let body = body.to_owned();
        async move {
            sender
                .send_request(target.url, &headers, body.as_bytes())
                .await
        }
    };
    let typed = futures_util::future::join_all(
        samples.iter().map(|s| send(s, target.secret, now, &s.body)),
    )
    .await;
    let mut checks: Vec<Check> = samples
        .iter()
        .zip(&typed)
        .map(|(s, r)| accepted(format!("{} answered 2xx within 10 s", s.event_type), r))
        .collect();
    let first = &samples[0];
    let other = WebhookSecret::generate();
    let tampered = first.body.replacen("Check", "Chek", 1);
    let unsigned = async {
        let mut headers = signed(target, first, target.secret, now);
        headers.retain(|(name, _)| !is_signature_header(name));
        sender
            .send_request(target.url, &headers, first.body.as_bytes())
            .await
    };
    let unknown = unknown_type(target.organization)?;
    let (duplicate, unknown, wrong, changed, stale, unsigned) = tokio::join!(
        send(first, target.secret, now, &first.body),
        send(&unknown, target.secret, now, &unknown.body),
        send(first, &other, now, &first.body),
        send(first, target.secret, now, &tampered),
        send(first, target.secret, now - STALE, &first.body),
        unsigned,
    );
    checks.push(accepted(
        "an unknown event type answered 2xx".into(),
        &unknown,
    ));
    checks.push(accepted(
        "the same event twice answered 2xx both times".into(),
        &duplicate,
    ));
    checks.push(refused("a wrong signature refused", &wrong));
    checks.push(refused("a tampered body refused", &changed));
    checks.push(refused("a timestamp 10 minutes old refused", &stale));
    checks.push(refused(
        "a request without signature headers refused",
        &unsigned,
    ));
    checks.push(https(target.url));
    Ok(report(target.url, checks))
}

fn report(url: &WebhookUrl, checks: Vec<Check>) -> Report {
    let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    let (pass, fail, warn) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Warn),
    );
    Report {
        url: url.as_str().to_owned(),
        passed: fail == 0,
        pass,
        fail,
        warn,
        checks,
    }
}

fn is_signature_header(name: &str) -> bool {
    use verihook_core::{headers, standard_webhooks};
    [
        headers::SIGNATURE,
        headers::SIGNATURE_NEXT,
        headers::TIMESTAMP,
        standard_webhooks::headers::SIGNATURE,
        standard_webhooks::headers::TIMESTAMP,
    ]
    .contains(&name)
}

/// The sample's headers as a delivery signs them with `secret` at `timestamp`, and the
/// check's mark.
fn signed(
    target: &Target<'_>,
    sample: &Sample,
    secret: &WebhookSecret,
    timestamp: i64,
) -> Vec<(&'static str, String)> {
    let outgoing = Outgoing {
        event_id: sample.id.as_str(),
        event_type: sample.event_type,
        body: &sample.body,
        url: target.url,
        secret,
        // Another secret than the endpoint's stands alone (the wrong-signature check).
        previous: target
            .previous
            .filter(|_| std::ptr::eq(secret, target.secret)),
        scheme: target.scheme,
        attempt: 1,
        sequence: sample.sequence,
    };
    let mut headers = webhook_headers(&outgoing, timestamp);
    headers.push((CHECK_HEADER, "true".into()));
    headers
}

/// One event of each type, of a customer that does not exist.
fn samples(organization: &OrganizationId) -> Result<Vec<Sample>, DomainError> {
    let now = Timestamp::now();
    let mut customer = check_customer(organization, now)?;
    let mut events = vec![Event::customer_created(&customer, now)?];
    events.push(Event::customer_updated(&customer, &["firstName"], now)?);
    customer.status = CustomerStatus::Active;
    events.extend(Event::for_status_change(
        CustomerStatus::UnderReview,
        &customer,
        now,
    )?);
    customer.status = CustomerStatus::NeedsAdditionalInformation;
    customer.status_reason = Some("Proof of address required (verihook check)".into());
    let rfi = Event::for_status_change(CustomerStatus::UnderReview, &customer, now)?;
    events.extend(rfi.into_iter().skip(1));
    Ok(events
        .into_iter()
        .zip(1..)
        .map(|(e, sequence)| Sample {
            event_type: e.event_type.as_str(),
            id: e.id,
            sequence,
            body: e.body,
        })
        .collect())
}

/// An event of a type no receiver knows, shaped like the others.
fn unknown_type(organization: &OrganizationId) -> Result<Sample, DomainError> {
    let id = EventId::generate();
    let body = serde_json::json!({
        "type": "customer.check_unknown_type",
        "payload": { "customerId": check_customer_id().as_str() },
        "metadata": {
            "eventId": id.as_str(),
            "occurredAt": Timestamp::now().to_rfc3339(),
            "organizationId": organization.as_str(),
        },
    });
    Ok(Sample {
        event_type: "customer.check_unknown_type",
        id,
        sequence: 1,
        body: serde_json::to_string(&body)?,
    })
}

fn check_customer_id() -> CustomerId {
    let random = verihook_core::id::random_token();
    let id = format!("cus_check{}", &random[..random.len() - 5]);
    CustomerId::parse(&id).unwrap_or_else(|_| CustomerId::generate())
}

fn check_customer(organization: &OrganizationId, now: Timestamp) -> Result<Customer, DomainError> {
    // Fixed, valid values: an error here is a bug, said as a rendering error.
    let fixed = |e: &str| DomainError::Render(format!("the check's sample customer: {e}"));
    let text = |s: &str| Text::parse(s).map_err(fixed);
    Ok(Customer {
        id: check_customer_id(),
        organization_id: organization.clone(),
        customer_type: CustomerType::Individual,
        status: CustomerStatus::Created,
        status_reason: None,
        email: Email::parse("check@example.com").map_err(fixed)?,
        first_name: text("Check")?,
        last_name: text("Receiver")?,
        date_of_birth: None,
        address: Address::default(),
        created_at: now,
        updated_at: now,
        last_sequence: 0,
    })
}

fn timing(r: &AttemptResult) -> String {
    match r.status_code {
        Some(code) => format!("{code} in {} ms", r.duration.as_millis()),
        None => format!("no answer after {} ms", r.duration.as_millis()),
    }
}

fn line(name: String, verdict: Verdict, detail: String, r: &AttemptResult) -> Check {
    Check {
        name,
        verdict,
        detail,
        status_code: r.status_code,
        duration_ms: Some(u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// A request the receiver must take: 2xx within 10 s.
fn accepted(name: String, r: &AttemptResult) -> Check {
    let (verdict, detail) = match (r.status_code, &r.failure) {
        (Some(200..=299), _) if r.duration <= ANSWER_WITHIN => (Verdict::Pass, timing(r)),
        (Some(200..=299), _) => (
            Verdict::Fail,
            format!("{}: answer within 10 s (queue the work)", timing(r)),
        ),
        (Some(_), _) => (Verdict::Fail, format!("{}: answer 2xx", timing(r))),
        (None, failure) => (
            Verdict::Fail,
            failure
                .as_ref()
                .map_or_else(|| timing(r), |(_, message)| format!("no answer: {message}")),
        ),
    };
    line(name, verdict, detail, r)
}

/// A request the receiver must refuse: 401 expected, another 4xx or a 5xx tolerated.
fn refused(name: &str, r: &AttemptResult) -> Check {
    let (verdict, detail) = match (r.status_code, &r.failure) {
        (Some(401), _) => (Verdict::Pass, timing(r)),
        (Some(200..=299), _) => (
            Verdict::Fail,
            format!(
                "{}: accepted; verify the signature over the raw body and the timestamp",
                timing(r)
            ),
        ),
        (Some(400..=499), _) => (
            Verdict::Warn,
            format!("{}: refused; 401 is expected", timing(r)),
        ),
        (Some(_), _) => (
            Verdict::Warn,
            format!(
                "{}: refused, but a 5xx makes senders retry; answer 401",
                timing(r)
            ),
        ),
        (None, failure) => (
            Verdict::Fail,
            failure
                .as_ref()
                .map_or_else(|| timing(r), |(_, message)| format!("no answer: {message}")),
        ),
    };
    line(name.to_owned(), verdict, detail, r)
}

fn https(url: &WebhookUrl) -> Check {
    let secure = url.as_str().starts_with("https://");
    Check {
        name: "the URL is HTTPS".into(),
        verdict: if secure { Verdict::Pass } else { Verdict::Warn },
        detail: if secure {
            "https".into()
        } else {
            "plain http://: fine on localhost, never in production".into()
        },
        status_code: None,
        duration_ms: None,
    }
}

impl Report {
    /// The report as a person reads it: one line per check, then the summary.
    pub fn text(&self) -> String {
        let mut out = format!("verihook check {}\n", self.url);
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {:<50} {}\n",
                c.verdict.as_str(),
                c.name,
                c.detail
            ));
        }
        let warnings = if self.warn == 1 {
            "warning"
        } else {
            "warnings"
        };
        out.push_str(&format!(
            "{} passed, {} failed, {} {warnings}: {}\n",
            self.pass,
            self.fail,
            self.warn,
            if self.passed { "PASS" } else { "FAIL" }
        ));
        out
    }
}
