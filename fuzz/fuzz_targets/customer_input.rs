//! The customer and patch parsers: any request body either fails to parse, fails
//! validation with a field's error, or becomes a customer whose events every receiver
//! can read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::macros::date;
use verihook_core::{Customer, EventType, OrganizationId, Timestamp};
use verihook_server::api::input::{customer_patch, new_customer, CustomerInput};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<CustomerInput>(data) else {
        return;
    };
    let today = date!(2026 - 01 - 15);
    let now = Timestamp::from_unix_micros(1_768_435_200_000_000);
    let created = new_customer(&input, today).map(|new| {
        Customer::create(OrganizationId::generate(), new, now).expect("a valid customer")
    });
    let patch = customer_patch(&input, today);
    if let Err(e) = &created {
        assert!(
            !e.to_string().is_empty(),
            "a validation error names its field"
        );
    }
    let Ok(change) = created else { return };
    let mut events = change.events.clone();
    // The body that created it, as a patch (without `type`), changes no field (a complete
    // customer may move on to review).
    let mut same = input.clone();
    same.customer_type = None;
    if let Ok(patch) = customer_patch(&same, today) {
        let again = change
            .customer
            .apply_patch(&patch, now)
            .expect("a valid patch");
        let updated = again
            .events
            .iter()
            .any(|e| e.event_type == EventType::CustomerUpdated);
        assert!(!updated, "re-applying the creation changed the customer");
    }
    if let Ok(patch) = patch {
        let updated = change.customer.apply_patch(&patch, now);
        events.extend(updated.map(|c| c.events).unwrap_or_default());
    }
    for event in events {
        verihook_receiver::Event::from_slice(event.body.as_bytes())
            .expect("every event body is one a receiver reads");
    }
});
