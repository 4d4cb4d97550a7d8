//! Customers: their data, its validation, and the changes a customer goes through. Every
//! change is computed here as a pure function returning the new customer and the webhook
//! events it produces ([`CustomerChange`]); the store persists both in one transaction.

use crate::country::CountryCode;
use crate::error::{DomainError, ValidationError};
use crate::event::Event;
use crate::id::{CustomerId, OrganizationId};
use crate::status::{CustomerStatus, TransitionPolicy};
use crate::timestamp::Timestamp;
use serde::Deserialize;
use time::{macros::format_description, Date};

const MAX_TEXT: usize = 200;
const MAX_REASON: usize = 1_000;
/// The reason sent with `verification.rfi_required` when the decision gives none.
pub const DEFAULT_RFI_REASON: &str = "Additional information required";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerType {
    Individual,
    Business,
}

impl CustomerType {
    pub const ALL: [CustomerType; 2] = [Self::Individual, Self::Business];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "INDIVIDUAL",
            Self::Business => "BUSINESS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An e-mail address of the common `local@domain.tld` form, ASCII only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let invalid = "must be an e-mail address such as jane@example.com";
        if s.len() > 254 || !s.is_ascii() {
            return Err(invalid);
        }
        let (local, domain) = s.split_once('@').ok_or(invalid)?;
        let local_ok = (1..=64).contains(&local.len())
            && local.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c))
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short human-written text (a name, an address line): trimmed, 1 to 200 characters,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Self::parse_max(s, MAX_TEXT)
    }

    fn parse_max(s: &str, max: usize) -> Result<Self, &'static str> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            Err("must not be empty")
        } else if trimmed.chars().count() > max {
            Err("is too long")
        } else if trimmed.chars().any(char::is_control) {
            Err("must not contain control characters")
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: a real calendar date, in the past, not before 1900.
pub fn parse_date_of_birth(s: &str, today: Date) -> Result<Date, &'static str> {
    let format = format_description!("[year]-[month]-[day]");
    let date = Date::parse(s, format).map_err(|_| "must be a real date written YYYY-MM-DD")?;
    if date >= today {
        Err("must be in the past")
    } else if date.year() < 1900 {
        Err("must not be before 1900")
    } else {
        Ok(date)
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A postal address. Parts may arrive over several updates; [`Address::is_complete`] says
/// whether it has what a review needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub line1: Option<Text>,
    pub line2: Option<Text>,
    pub city: Option<Text>,
    pub state: Option<Text>,
    pub postal_code: Option<Text>,
    pub country: Option<CountryCode>,
}

impl Address {
    pub fn is_complete(&self) -> bool {
        self.line1.is_some()
            && self.city.is_some()
            && self.postal_code.is_some()
            && self.country.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Overwrites the parts `input` gives, keeping the rest (JSON merge-patch semantics).
    fn merge(&self, input: &AddressInput) -> Result<Self, ValidationError> {
        let text = |field: &str, value: &Option<String>, current: &Option<Text>| {
            value.as_deref().map_or(Ok(current.clone()), |v| {
                Text::parse(v)
                    .map(Some)
                    .map_err(|m| ValidationError::new(field, m))
            })
        };
        let country = match input.country.as_deref() {
            None => self.country,
            Some(c) => Some(CountryCode::parse(c).ok_or_else(|| {
                ValidationError::new(
                    "country",
                    "must be an ISO 3166-1 alpha-2 code in upper case, such as DE or US",
                )
            })?),
        };
        Ok(Self {
            line1: text("line1", &input.line1, &self.line1)?,
            line2: text("line2", &input.line2, &self.line2)?,
            city: text("city", &input.city, &self.city)?,
            state: text("state", &input.state, &self.state)?,
            postal_code: text("postalCode", &input.postal_code, &self.postal_code)?,
            country,
        })
    }
}

/// The address as it arrives in a request. In a patch, the parts given replace those
/// stored; the others stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressInput {
    #[cfg_attr(feature = "openapi", schema(example = "1 Main St", nullable = false))]
    pub line1: Option<String>,
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub line2: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "Berlin", nullable = false))]
    pub city: Option<String>,
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub state: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "10115", nullable = false))]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "DE", pattern = "^[A-Z]{2}$", nullable = false)
    )]
    pub country: Option<String>,
}

/// A customer's fields as they arrive, everything optional: a missing field is reported
/// by [`NewCustomer::parse`] as a validation error naming it, and in a patch it stays as
/// it is.
///
/// On creation `type`, `email`, `firstName` and `lastName` are required; `type` is
/// `INDIVIDUAL` or `BUSINESS` and cannot change later.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// `INDIVIDUAL` or `BUSINESS`; set on creation, never changed.
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "INDIVIDUAL",
            nullable = false,
            pattern = "^(INDIVIDUAL|BUSINESS)$"
        )
    )]
    pub customer_type: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "jane.smith@example.com", format = Email, nullable = false)
    )]
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "Jane", nullable = false))]
    pub first_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "Smith", nullable = false))]
    pub last_name: Option<String>,
    /// A past date.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "1990-04-01", format = Date, nullable = false)
    )]
    pub date_of_birth: Option<String>,
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub address: Option<AddressInput>,
}

/// `POST /v1/customers` as it arrives.
pub type NewCustomerInput = CustomerInput;
/// `PATCH /v1/customers/{id}` as it arrives.
pub type CustomerPatchInput = CustomerInput;

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ValidationError> {
    value
        .as_deref()
        .ok_or_else(|| ValidationError::new(field, "is required"))
}

fn text_field(field: &str, value: &str) -> Result<Text, ValidationError> {
    Text::parse(value).map_err(|m| ValidationError::new(field, m))
}

fn email_field(value: &str) -> Result<Email, ValidationError> {
    Email::parse(value).map_err(|m| ValidationError::new("email", m))
}

fn date_of_birth_field(value: &str, today: Date) -> Result<Date, ValidationError> {
    parse_date_of_birth(value, today).map_err(|m| ValidationError::new("dateOfBirth", m))
}

/// A validated new customer.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub customer_type: CustomerType,
    pub email: Email,
    pub first_name: Text,
    pub last_name: Text,
    pub date_of_birth: Option<Date>,
    pub address: Address,
}

impl NewCustomer {
    pub fn parse(input: &NewCustomerInput, today: Date) -> Result<Self, ValidationError> {
        let customer_type = CustomerType::parse(required("type", &input.customer_type)?)
            .ok_or_else(|| ValidationError::new("type", "must be INDIVIDUAL or BUSINESS"))?;
        Ok(Self {
            customer_type,
            email: email_field(required("email", &input.email)?)?,
            first_name: text_field("firstName", required("firstName", &input.first_name)?)?,
            last_name: text_field("lastName", required("lastName", &input.last_name)?)?,
            date_of_birth: input
                .date_of_birth
                .as_deref()
                .map(|d| date_of_birth_field(d, today))
                .transpose()?,
            address: input
                .address
                .as_ref()
                .map(|a| Address::default().merge(a).map_err(|e| e.within("address")))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A validated partial update.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub email: Option<Email>,
    pub first_name: Option<Text>,
    pub last_name: Option<Text>,
    pub date_of_birth: Option<Date>,
    pub address: Option<AddressInput>,
}

impl CustomerPatch {
    pub fn parse(input: &CustomerPatchInput, today: Date) -> Result<Self, ValidationError> {
        if input.customer_type.is_some() {
            return Err(ValidationError::new("type", "cannot be changed"));
        }
        let address = input.address.clone();
        if let Some(a) = &address {
            // Validate now, merge later against the stored address.
            Address::default()
                .merge(a)
                .map_err(|e| e.within("address"))?;
        }
        Ok(Self {
            email: input.email.as_deref().map(email_field).transpose()?,
            first_name: input
                .first_name
                .as_deref()
                .map(|v| text_field("firstName", v))
                .transpose()?,
            last_name: input
                .last_name
                .as_deref()
                .map(|v| text_field("lastName", v))
                .transpose()?,
            date_of_birth: input
                .date_of_birth
                .as_deref()
                .map(|d| date_of_birth_field(d, today))
                .transpose()?,
            address,
        })
    }
}

/// A decision's reason (for NEEDS_ADDITIONAL_INFORMATION and others).
pub fn parse_reason(value: Option<&str>) -> Result<Option<String>, ValidationError> {
    value
        .map(|v| {
            Text::parse_max(v, MAX_REASON)
                .map(|t| t.0)
                .map_err(|m| ValidationError::new("reason", m))
        })
        .transpose()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub organization_id: OrganizationId,
    pub customer_type: CustomerType,
    pub status: CustomerStatus,
    /// The reason given with the latest status change, if any.
    pub status_reason: Option<String>,
    pub email: Email,
    pub first_name: Text,
    pub last_name: Text,
    pub date_of_birth: Option<Date>,
    pub address: Address,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A customer after a change, with the events the change produces (possibly none).
#[derive(Debug, Clone)]
pub struct CustomerChange {
    pub customer: Customer,
    pub events: Vec<Event>,
}

impl Customer {
    /// A new customer in CREATED, with its `customer.created` event.
    pub fn create(
        organization_id: OrganizationId,
        new: NewCustomer,
        now: Timestamp,
    ) -> CustomerChange {
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
        };
        let events = vec![Event::customer_created(&customer, now)];
        CustomerChange { customer, events }
    }

    /// Whether the customer has what a review needs.
    pub fn data_complete(&self) -> bool {
        self.date_of_birth.is_some() && self.address.is_complete()
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
        if let Some(input) = &patch.address {
            let merged = self.address.merge(input).map_err(|e| e.within("address"))?;
            set_if_changed(&mut next.address, &Some(merged), "address", &mut changed);
        }
        let mut events = Vec::new();
        if !changed.is_empty() {
            next.updated_at = now;
            events.push(Event::customer_updated(&next, &changed, now));
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
        Ok(CustomerChange {
            customer: next,
            events,
        })
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
        let events = Event::for_status_change(self.status, &next, now);
        Ok(CustomerChange {
            customer: next,
            events,
        })
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
    use crate::event::EventType;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 01 - 15);

    fn input() -> NewCustomerInput {
        NewCustomerInput {
            customer_type: Some("INDIVIDUAL".into()),
            email: Some("jane.smith@example.com".into()),
            first_name: Some("Jane".into()),
            last_name: Some("Smith".into()),
            ..Default::default()
        }
    }

    fn full_address() -> AddressInput {
        AddressInput {
            line1: Some("1 Main St".into()),
            city: Some("Berlin".into()),
            postal_code: Some("10115".into()),
            country: Some("DE".into()),
            ..Default::default()
        }
    }

    fn created() -> Customer {
        let new = NewCustomer::parse(&input(), TODAY).expect("valid input");
        Customer::create(OrganizationId::generate(), new, Timestamp::now()).customer
    }

    fn types(change: &CustomerChange) -> Vec<EventType> {
        change.events.iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn missing_and_invalid_fields_are_named() {
        type Case = (fn(&mut NewCustomerInput), &'static str);
        let cases: [Case; 6] = [
            (|i| i.email = None, "email"),
            (|i| i.email = Some("not-an-email".into()), "email"),
            (|i| i.customer_type = Some("PERSON".into()), "type"),
            (|i| i.first_name = Some("  ".into()), "firstName"),
            (
                |i| i.date_of_birth = Some("2030-01-01".into()),
                "dateOfBirth",
            ),
            (
                |i| {
                    i.address = Some(AddressInput {
                        country: Some("XX".into()),
                        ..Default::default()
                    })
                },
                "address.country",
            ),
        ];
        for (mutate, field) in cases {
            let mut i = input();
            mutate(&mut i);
            let err = NewCustomer::parse(&i, TODAY).expect_err(field);
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn dates_of_birth_must_be_real_and_past() {
        assert!(parse_date_of_birth("1990-02-28", TODAY).is_ok());
        for bad in [
            "1990-02-30",
            "2026-01-15",
            "2027-01-01",
            "1899-12-31",
            "90-01-01",
            "",
        ] {
            assert!(parse_date_of_birth(bad, TODAY).is_err(), "{bad}");
        }
        assert_eq!(format_date(date!(1990 - 02 - 03)), "1990-02-03");
    }

    #[test]
    fn completing_the_data_moves_to_review() {
        let customer = created();
        let patch = CustomerPatch::parse(
            &CustomerPatchInput {
                date_of_birth: Some("1990-01-01".into()),
                address: Some(full_address()),
                ..Default::default()
            },
            TODAY,
        )
        .expect("valid patch");
        let change = customer
            .apply_patch(&patch, Timestamp::now())
            .expect("patch");
        assert_eq!(change.customer.status, CustomerStatus::UnderReview);
        assert_eq!(
            types(&change),
            [EventType::CustomerUpdated, EventType::CustomerStatusChanged]
        );
    }

    #[test]
    fn address_parts_merge_over_several_patches() {
        let customer = created();
        let first = CustomerPatch::parse(
            &CustomerPatchInput {
                address: Some(AddressInput {
                    line1: Some("1 Main St".into()),
                    ..Default::default()
                }),
                date_of_birth: Some("1990-01-01".into()),
                ..Default::default()
            },
            TODAY,
        )
        .expect("valid");
        let step = customer
            .apply_patch(&first, Timestamp::now())
            .expect("patch");
        assert_eq!(step.customer.status, CustomerStatus::Created);
        let rest = AddressInput {
            line1: None,
            ..full_address()
        };
        let second = CustomerPatch::parse(
            &CustomerPatchInput {
                address: Some(rest),
                ..Default::default()
            },
            TODAY,
        )
        .expect("valid");
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
        let patch = CustomerPatch::parse(
            &CustomerPatchInput {
                email: Some(customer.email.as_str().into()),
                ..Default::default()
            },
            TODAY,
        )
        .expect("valid");
        let change = customer
            .apply_patch(&patch, Timestamp::now())
            .expect("patch");
        assert!(change.events.is_empty());
        assert_eq!(change.customer, customer);
    }

    #[test]
    fn the_type_cannot_be_patched() {
        let err = CustomerPatch::parse(
            &CustomerPatchInput {
                customer_type: Some("BUSINESS".into()),
                ..Default::default()
            },
            TODAY,
        )
        .expect_err("type is fixed");
        assert_eq!(err.field, "type");
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

    proptest! {
        #[test]
        fn email_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn plain_addresses_are_accepted(local in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10})?", domain in "[a-z0-9]{1,20}", tld in "[a-z]{2,6}") {
            let email = format!("{local}@{domain}.{tld}");
            prop_assert!(Email::parse(&email).is_ok(), "{}", email);
        }

        #[test]
        fn addresses_without_one_at_are_refused(s in "[a-z.]{0,30}") {
            prop_assert!(Email::parse(&s).is_err());
        }

        #[test]
        fn text_is_trimmed_and_bounded(s in "\\PC{0,250}") {
            if let Ok(t) = Text::parse(&s) {
                prop_assert_eq!(t.as_str(), s.trim());
                prop_assert!(!t.as_str().is_empty() && t.as_str().chars().count() <= MAX_TEXT);
            }
        }
    }
}
