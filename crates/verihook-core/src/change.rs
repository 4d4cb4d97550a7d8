//! What happens to a customer: creation, a partial update, a status decision. Each is a
//! pure function of the customer as stored, returning the new customer and the webhook
//! events it produces ([`CustomerChange`]); the store persists both in one transaction.

use crate::customer::{Customer, CustomerPatch, NewCustomer};
use crate::error::DomainError;
use crate::event::{Event, DEFAULT_RFI_REASON};
use crate::id::{CustomerId, OrganizationId};
use crate::status::{CustomerStatus, TransitionPolicy};
use crate::timestamp::Timestamp;

/// A customer after a change, with the events the change produces (possibly none).
#[derive(Debug, Clone)]
pub struct CustomerChange {
    pub customer: Customer,
    pub events: Vec<Event>,
}

impl CustomerChange {
    /// Numbers the events on from `after` (the customer's latest sequence before the
    /// change), in the order they are listed: the store writes the change under the
    /// customer's row lock, so the numbers follow the order of the commits, without a
    /// gap or a repeat.
    fn numbered(after: u64, mut customer: Customer, mut events: Vec<Event>) -> Self {
        for (event, sequence) in events.iter_mut().zip(after + 1..) {
            event.sequence = sequence;
        }
        customer.last_sequence = after + events.len() as u64;
        Self { customer, events }
    }
}

impl Customer {
    /// A new customer in CREATED, with its `customer.created` event.
    pub fn create(
        organization_id: OrganizationId,
        new: NewCustomer,
        now: Timestamp,
    ) -> Result<CustomerChange, DomainError> {
        let customer = Customer {
            id: CustomerId::generate(),
            organization_id,
            customer_type: new.customer_type,
            status: CustomerStatus::Created,
            status_reason: None,
            email: new.email,
            first_name: new.first_name,
            last_name: new.last_name,
            date_of_birth: new.date_of_birth,
            address: new.address,
            created_at: now,
            updated_at: now,
            last_sequence: 0,
        };
        let events = vec![Event::customer_created(&customer, now)?];
        Ok(CustomerChange::numbered(0, customer, events))
    }

    /// Applies a partial update. A real change emits `customer.updated`; a customer in
    /// CREATED or NEEDS_ADDITIONAL_INFORMATION whose data is then complete moves to
    /// UNDER_REVIEW, with that change's events after it.
    pub fn apply_patch(
        &self,
        patch: &CustomerPatch,
        now: Timestamp,
    ) -> Result<CustomerChange, DomainError> {
        let mut next = self.clone();
        let mut changed = Vec::new();
        set_if_changed(&mut next.email, &patch.email, "email", &mut changed);
        set_if_changed(
            &mut next.first_name,
            &patch.first_name,
            "firstName",
            &mut changed,
        );
        set_if_changed(
            &mut next.last_name,
            &patch.last_name,
            "lastName",
            &mut changed,
        );
        if let Some(date) = patch.date_of_birth {
            set_if_changed(
                &mut next.date_of_birth,
                &Some(Some(date)),
                "dateOfBirth",
                &mut changed,
            );
        }
        if let Some(parts) = &patch.address {
            let merged = self.address.merged(parts);
            set_if_changed(&mut next.address, &Some(merged), "address", &mut changed);
        }
        let mut events = Vec::new();
        if !changed.is_empty() {
            next.updated_at = now;
            events.push(Event::customer_updated(&next, &changed, now)?);
        }
        let awaiting_data = matches!(
            next.status,
            CustomerStatus::Created | CustomerStatus::NeedsAdditionalInformation
        );
        if awaiting_data && next.data_complete() {
            let review = next.change_status(
                CustomerStatus::UnderReview,
                None,
                TransitionPolicy::Workflow,
                now,
            )?;
            next = review.customer;
            events.extend(review.events);
        }
        Ok(CustomerChange::numbered(self.last_sequence, next, events))
    }

    /// Moves the customer to `to` if `policy` allows it, with the events of the change:
    /// always `customer.status_changed`, then `verification.completed` or
    /// `verification.rfi_required` where the new status calls for one.
    pub fn change_status(
        &self,
        to: CustomerStatus,
        reason: Option<String>,
        policy: TransitionPolicy,
        now: Timestamp,
    ) -> Result<CustomerChange, DomainError> {
        self.status
            .check_transition(to, policy, self.data_complete())?;
        let reason = match (to, reason) {
            (CustomerStatus::NeedsAdditionalInformation, None) => {
                Some(DEFAULT_RFI_REASON.to_owned())
            }
            (_, reason) => reason,
        };
        let next = Customer {
            status: to,
            status_reason: reason,
            updated_at: now,
            ..self.clone()
        };
        let events = Event::for_status_change(self.status, &next, now)?;
        Ok(CustomerChange::numbered(self.last_sequence, next, events))
    }
}

fn set_if_changed<T: Clone + PartialEq>(
    slot: &mut T,
    value: &Option<T>,
    name: &'static str,
    changed: &mut Vec<&'static str>,
) {
    if let Some(value) = value {
        if slot != value {
            *slot = value.clone();
            changed.push(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::country::CountryCode;
    use crate::customer::{AddressPatch, CustomerType, Email, Text};
    use crate::event::EventType;
    use time::macros::date;

    fn text(s: &str) -> Text {
        Text::parse(s).expect("valid text")
    }

    fn created() -> Customer {
        let new = NewCustomer {
            customer_type: CustomerType::Individual,
            email: Email::parse("jane.smith@example.com").expect("valid"),
            first_name: text("Jane"),
            last_name: text("Smith"),
            date_of_birth: None,
            address: Default::default(),
        };
        Customer::create(OrganizationId::generate(), new, Timestamp::now())
            .expect("rendered")
            .customer
    }

    fn full_address() -> AddressPatch {
        AddressPatch {
            line1: Some(text("1 Main St")),
            city: Some(text("Berlin")),
            postal_code: Some(text("10115")),
            country: CountryCode::parse("DE"),
            ..Default::default()
        }
    }

    fn types(change: &CustomerChange) -> Vec<EventType> {
        change.events.iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn completing_the_data_moves_to_review() {
        let patch = CustomerPatch {
            date_of_birth: Some(date!(1990 - 01 - 01)),
            address: Some(full_address()),
            ..Default::default()
        };
        let change = created()
            .apply_patch(&patch, Timestamp::now())
            .expect("patch");
        assert_eq!(change.customer.status, CustomerStatus::UnderReview);
        assert_eq!(
            types(&change),
            [EventType::CustomerUpdated, EventType::CustomerStatusChanged]
        );
    }

    #[test]
    fn events_are_numbered_per_customer_in_the_listed_order() {
        let created = created();
        assert_eq!(created.last_sequence, 1);
        let patch = CustomerPatch {
            date_of_birth: Some(date!(1990 - 01 - 01)),
            address: Some(full_address()),
            ..Default::default()
        };
        let review = created
            .apply_patch(&patch, Timestamp::now())
            .expect("patch");
        let numbers: Vec<u64> = review.events.iter().map(|e| e.sequence).collect();
        assert_eq!(numbers, [2, 3], "updated, then status_changed");
        let decided = review
            .customer
            .change_status(
                CustomerStatus::Active,
                None,
                TransitionPolicy::Workflow,
                Timestamp::now(),
            )
            .expect("workflow");
        let numbers: Vec<u64> = decided.events.iter().map(|e| e.sequence).collect();
        assert_eq!(
            numbers,
            [4, 5],
            "status_changed, then verification.completed"
        );
        assert_eq!(decided.customer.last_sequence, 5);
        let nothing = decided
            .customer
            .apply_patch(&CustomerPatch::default(), Timestamp::now())
            .expect("patch");
        assert_eq!(nothing.customer.last_sequence, 5, "no event, no number");
    }

    #[test]
    fn address_parts_merge_over_several_patches() {
        let first = CustomerPatch {
            address: Some(AddressPatch {
                line1: Some(text("1 Main St")),
                ..Default::default()
            }),
            date_of_birth: Some(date!(1990 - 01 - 01)),
            ..Default::default()
        };
        let step = created()
            .apply_patch(&first, Timestamp::now())
            .expect("patch");
        assert_eq!(step.customer.status, CustomerStatus::Created);
        let second = CustomerPatch {
            address: Some(AddressPatch {
                line1: None,
                ..full_address()
            }),
            ..Default::default()
        };
        let done = step
            .customer
            .apply_patch(&second, Timestamp::now())
            .expect("patch");
        assert_eq!(done.customer.status, CustomerStatus::UnderReview);
        assert_eq!(
            done.customer.address.line1.as_ref().map(Text::as_str),
            Some("1 Main St")
        );
    }

    #[test]
    fn a_patch_that_changes_nothing_emits_nothing() {
        let customer = created();
        let patch = CustomerPatch {
            email: Some(customer.email.clone()),
            ..Default::default()
        };
        let change = customer
            .apply_patch(&patch, Timestamp::now())
            .expect("patch");
        assert!(change.events.is_empty());
        assert_eq!(change.customer, customer);
    }

    #[test]
    fn status_changes_emit_the_contract_events() {
        use CustomerStatus::*;
        let cases = [
            (
                Active,
                vec![
                    EventType::CustomerStatusChanged,
                    EventType::VerificationCompleted,
                ],
            ),
            (
                Rejected,
                vec![
                    EventType::CustomerStatusChanged,
                    EventType::VerificationCompleted,
                ],
            ),
            (
                Deactivated,
                vec![
                    EventType::CustomerStatusChanged,
                    EventType::VerificationCompleted,
                ],
            ),
            (
                NeedsAdditionalInformation,
                vec![
                    EventType::CustomerStatusChanged,
                    EventType::VerificationRfiRequired,
                ],
            ),
            (UnderReview, vec![EventType::CustomerStatusChanged]),
        ];
        for (to, expected) in cases {
            let change = created()
                .change_status(to, None, TransitionPolicy::Sandbox, Timestamp::now())
                .expect("sandbox forces");
            assert_eq!(types(&change), expected, "{to}");
        }
    }

    #[test]
    fn rfi_without_a_reason_gets_the_default_one() {
        let change = created()
            .change_status(
                CustomerStatus::NeedsAdditionalInformation,
                None,
                TransitionPolicy::Sandbox,
                Timestamp::now(),
            )
            .expect("sandbox");
        assert_eq!(
            change.customer.status_reason.as_deref(),
            Some(DEFAULT_RFI_REASON)
        );
    }
}
