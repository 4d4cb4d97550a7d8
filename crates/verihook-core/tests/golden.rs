//! Golden tests: every event body has exactly the fields of the product document's example
//! of its type, in the same order, and is byte-stable under JSON.parse/JSON.stringify.

use serde_json::Value;
use time::macros::date;
use verihook_core::country::CountryCode;
use verihook_core::customer::{Email, Text};
use verihook_core::{
    Address, AddressPatch, Customer, CustomerPatch, CustomerStatus, CustomerType, Event,
    NewCustomer, OrganizationId, Timestamp, TransitionPolicy,
};

fn seed(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/seed/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

fn jane() -> Customer {
    let new = NewCustomer {
        customer_type: CustomerType::Individual,
        email: Email::parse("jane.smith@example.com").expect("valid"),
        first_name: text("Jane"),
        last_name: text("Smith"),
        date_of_birth: Some(date!(1990 - 04 - 01)),
        address: Address::default().merged(&AddressPatch {
            line1: Some(text("1 Main St")),
            city: Some(text("Berlin")),
            postal_code: Some(text("10115")),
            country: CountryCode::parse("DE"),
            ..Default::default()
        }),
    };
    Customer::create(OrganizationId::generate(), new, Timestamp::now())
        .expect("rendered")
        .customer
}

fn is_rfc3339_utc_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Same keys in the same order at every level; equal values, except that ids must carry
/// the right prefix and times must be RFC 3339 UTC, since those differ by nature.
fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            assert_eq!(ka, kb, "keys of {path}");
            for (k, v) in a {
                assert_same_shape(v, &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::String(a), Value::String(b)) => {
            let key = path.rsplit('.').next().unwrap_or_default();
            if key.ends_with("At") {
                assert!(is_rfc3339_utc_seconds(a), "{path}: {a}");
            } else if let Some(prefix) = b.get(..4).filter(|p| p.ends_with('_')) {
                assert!(
                    a.starts_with(prefix),
                    "{path}: {a} should start with {prefix}"
                );
            } else {
                assert_eq!(a, b, "{path}");
            }
        }
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

fn assert_stable_under_reserialization(body: &str) {
    let parsed: Value = serde_json::from_str(body).expect("body is JSON");
    assert_eq!(serde_json::to_string(&parsed).expect("serializes"), body);
}

fn check(event: &Event, fixture: &str) {
    let ours: Value = serde_json::from_str(&event.body).expect("body is JSON");
    assert_same_shape(&ours, &seed(fixture), "$");
    assert_stable_under_reserialization(&event.body);
    assert_eq!(ours["metadata"]["eventId"], event.id.as_str());
}

fn sandbox(c: &Customer, to: CustomerStatus, reason: Option<&str>) -> Vec<Event> {
    c.change_status(
        to,
        reason.map(str::to_owned),
        TransitionPolicy::Sandbox,
        Timestamp::now(),
    )
    .expect("sandbox forces")
    .events
}

#[test]
fn customer_created_matches_the_example() {
    let c = jane();
    check(
        &Event::customer_created(&c, Timestamp::now()).expect("rendered"),
        "customer-created",
    );
}

#[test]
fn status_changed_matches_the_example() {
    let events = sandbox(&jane(), CustomerStatus::UnderReview, None);
    assert_eq!(events.len(), 1);
    check(&events[0], "customer-status_changed-under-review");
}

#[test]
fn verification_completed_matches_the_example() {
    let mut c = jane();
    c.status = CustomerStatus::UnderReview;
    let events = sandbox(&c, CustomerStatus::Active, None);
    assert_eq!(events.len(), 2);
    let mut changed = seed("customer-status_changed-under-review");
    changed["payload"]["previousStatus"] = "UNDER_REVIEW".into();
    changed["payload"]["newStatus"] = "ACTIVE".into();
    let ours: Value = serde_json::from_str(&events[0].body).expect("JSON");
    assert_same_shape(&ours, &changed, "$");
    check(&events[1], "verification-completed-active");
}

#[test]
fn rfi_required_matches_the_example() {
    let mut c = jane();
    c.status = CustomerStatus::UnderReview;
    let events = sandbox(
        &c,
        CustomerStatus::NeedsAdditionalInformation,
        Some("Additional document verification required"),
    );
    assert_eq!(events.len(), 2);
    check(&events[1], "verification-rfi_required");
}

#[test]
fn customer_updated_carries_the_changed_fields() {
    let mut c = jane();
    c.status = CustomerStatus::Active;
    let patch = CustomerPatch {
        email: Some(Email::parse("jane@example.org").expect("valid")),
        last_name: Some(text("Smith-Jones")),
        ..Default::default()
    };
    let change = c.apply_patch(&patch, Timestamp::now()).expect("patch");
    assert_eq!(change.events.len(), 1);
    let body: Value = serde_json::from_str(&change.events[0].body).expect("JSON");
    let keys: Vec<_> = body["payload"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "customerId",
            "customerType",
            "status",
            "email",
            "changedFields",
            "updatedAt"
        ]
    );
    assert_eq!(body["type"], "customer.updated");
    assert_eq!(
        body["payload"]["changedFields"],
        serde_json::json!(["email", "lastName"])
    );
    assert_eq!(body["payload"]["email"], "jane@example.org");
    assert_stable_under_reserialization(&change.events[0].body);
}

#[test]
fn non_ascii_and_slashes_stay_as_written() {
    let mut c = jane();
    c.status = CustomerStatus::UnderReview;
    let events = sandbox(
        &c,
        CustomerStatus::NeedsAdditionalInformation,
        Some("Pièce d'identité / passeport \"récent\" requis — 身份证"),
    );
    let body = &events[1].body;
    assert!(
        body.contains("Pièce d'identité / passeport \\\"récent\\\" requis — 身份证"),
        "{body}"
    );
    assert!(!body.contains("\\/") && !body.contains("\\u"));
    assert_stable_under_reserialization(body);
}

/// What the sender renders, the receiver crate parses into the matching typed event.
#[test]
fn every_rendered_event_parses_into_its_receiver_type() {
    use verihook_receiver::Event as Received;
    let c = jane();
    let mut events = vec![Event::customer_created(&c, Timestamp::now()).expect("rendered")];
    events.extend(sandbox(&c, CustomerStatus::UnderReview, None));
    let mut reviewing = c.clone();
    reviewing.status = CustomerStatus::UnderReview;
    events.extend(sandbox(&reviewing, CustomerStatus::Active, None));
    events.extend(sandbox(
        &reviewing,
        CustomerStatus::NeedsAdditionalInformation,
        Some("ID"),
    ));
    events.push(Event::customer_updated(&c, &["email"], Timestamp::now()).expect("rendered"));
    let mut kinds = Vec::new();
    for e in &events {
        let parsed = Received::from_slice(e.body.as_bytes()).expect("parses");
        assert_eq!(parsed.event_type(), e.event_type.as_str());
        assert_eq!(parsed.event_id(), Some(e.id.as_str()));
        assert_eq!(parsed.customer_id(), Some(c.id.as_str()));
        assert!(!matches!(parsed, Received::Unknown { .. }));
        kinds.push(parsed.event_type().to_owned());
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), 5, "all five types: {kinds:?}");
}
