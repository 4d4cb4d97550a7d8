//! Request bodies as they arrive, and their parsing into the domain's validated types.
//! Every field is optional here, so that a missing one is answered as a validation error
//! naming it (422) rather than as a malformed body; unknown fields are refused (400).

use serde::Deserialize;
use time::Date;
use utoipa::ToSchema;
use verihook_core::country::CountryCode;
use verihook_core::customer::{parse_date_of_birth, Email, Text};
use verihook_core::{
    Address, AddressPatch, CustomerPatch, CustomerType, NewCustomer, ValidationError,
};

/// The address as it arrives in a request. In a patch, the parts given replace those
/// stored; the others stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressInput {
    #[schema(example = "1 Main St", nullable = false)]
    pub line1: Option<String>,
    #[schema(nullable = false)]
    pub line2: Option<String>,
    #[schema(example = "Berlin", nullable = false)]
    pub city: Option<String>,
    #[schema(nullable = false)]
    pub state: Option<String>,
    #[schema(example = "10115", nullable = false)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "DE", pattern = "^[A-Z]{2}$", nullable = false)]
    pub country: Option<String>,
}

/// A customer's fields as they arrive, everything optional: on creation `type`, `email`,
/// `firstName` and `lastName` are required; in a patch what is absent stays as it is.
/// `type` is `INDIVIDUAL` or `BUSINESS` and cannot change later.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// `INDIVIDUAL` or `BUSINESS`; set on creation, never changed.
    #[serde(rename = "type")]
    #[schema(example = "INDIVIDUAL", nullable = false, schema_with = super::schemas::customer_type)]
    pub customer_type: Option<String>,
    #[schema(example = "jane.smith@example.com", format = Email, nullable = false)]
    pub email: Option<String>,
    #[schema(example = "Jane", nullable = false)]
    pub first_name: Option<String>,
    #[schema(example = "Smith", nullable = false)]
    pub last_name: Option<String>,
    /// A past date.
    #[schema(example = "1990-04-01", format = Date, nullable = false)]
    pub date_of_birth: Option<String>,
    #[schema(nullable = false)]
    pub address: Option<AddressInput>,
}

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ValidationError> {
    value
        .as_deref()
        .ok_or_else(|| ValidationError::new(field, "is required"))
}

fn text(field: &str, value: &str) -> Result<Text, ValidationError> {
    Text::parse(value).map_err(|m| ValidationError::new(field, m))
}

fn optional_text(field: &str, value: &Option<String>) -> Result<Option<Text>, ValidationError> {
    value.as_deref().map(|v| text(field, v)).transpose()
}

fn email(value: &str) -> Result<Email, ValidationError> {
    Email::parse(value).map_err(|m| ValidationError::new("email", m))
}

fn date_of_birth(value: &Option<String>, today: Date) -> Result<Option<Date>, ValidationError> {
    value
        .as_deref()
        .map(|d| parse_date_of_birth(d, today).map_err(|m| ValidationError::new("dateOfBirth", m)))
        .transpose()
}

/// The parts of an address a request gives, each validated; errors name `address.<part>`.
fn address_patch(input: &AddressInput) -> Result<AddressPatch, ValidationError> {
    let parts = || {
        let country = input
            .country
            .as_deref()
            .map(|c| {
                CountryCode::parse(c).ok_or_else(|| {
                    ValidationError::new(
                        "country",
                        "must be an ISO 3166-1 alpha-2 code in upper case, such as DE or US",
                    )
                })
            })
            .transpose()?;
        Ok(AddressPatch {
            line1: optional_text("line1", &input.line1)?,
            line2: optional_text("line2", &input.line2)?,
            city: optional_text("city", &input.city)?,
            state: optional_text("state", &input.state)?,
            postal_code: optional_text("postalCode", &input.postal_code)?,
            country,
        })
    };
    parts().map_err(|e: ValidationError| e.within("address"))
}

/// `POST /v1/customers`'s body, validated.
pub fn new_customer(input: &CustomerInput, today: Date) -> Result<NewCustomer, ValidationError> {
    let customer_type = CustomerType::parse(required("type", &input.customer_type)?)
        .ok_or_else(|| ValidationError::new("type", "must be INDIVIDUAL or BUSINESS"))?;
    Ok(NewCustomer {
        customer_type,
        email: email(required("email", &input.email)?)?,
        first_name: text("firstName", required("firstName", &input.first_name)?)?,
        last_name: text("lastName", required("lastName", &input.last_name)?)?,
        date_of_birth: date_of_birth(&input.date_of_birth, today)?,
        address: input
            .address
            .as_ref()
            .map(address_patch)
            .transpose()?
            .map(|parts| Address::default().merged(&parts))
            .unwrap_or_default(),
    })
}

/// `PATCH /v1/customers/{id}`'s body, validated.
pub fn customer_patch(
    input: &CustomerInput,
    today: Date,
) -> Result<CustomerPatch, ValidationError> {
    if input.customer_type.is_some() {
        return Err(ValidationError::new("type", "cannot be changed"));
    }
    Ok(CustomerPatch {
        email: input.email.as_deref().map(email).transpose()?,
        first_name: optional_text("firstName", &input.first_name)?,
        last_name: optional_text("lastName", &input.last_name)?,
        date_of_birth: date_of_birth(&input.date_of_birth, today)?,
        address: input.address.as_ref().map(address_patch).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 01 - 15);

    fn input() -> CustomerInput {
        CustomerInput {
            customer_type: Some("INDIVIDUAL".into()),
            email: Some("jane.smith@example.com".into()),
            first_name: Some("Jane".into()),
            last_name: Some("Smith".into()),
            ..Default::default()
        }
    }

    #[test]
    fn missing_and_invalid_fields_are_named() {
        type Case = (fn(&mut CustomerInput), &'static str);
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
            let err = new_customer(&i, TODAY).expect_err(field);
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn an_address_is_taken_part_by_part() {
        let mut i = input();
        i.address = Some(AddressInput {
            line1: Some(" 1 Main St ".into()),
            country: Some("DE".into()),
            ..Default::default()
        });
        let new = new_customer(&i, TODAY).expect("valid");
        assert_eq!(
            new.address.line1.as_ref().map(Text::as_str),
            Some("1 Main St")
        );
        assert_eq!(
            new.address.country.map(|c| c.as_str().to_owned()),
            Some("DE".into())
        );
        assert!(new.address.city.is_none());
        let patch = customer_patch(
            &CustomerInput {
                address: Some(AddressInput {
                    postal_code: Some("".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            TODAY,
        )
        .expect_err("an empty part");
        assert_eq!(patch.field, "address.postalCode");
    }

    #[test]
    fn the_type_cannot_be_patched() {
        let err = customer_patch(
            &CustomerInput {
                customer_type: Some("BUSINESS".into()),
                ..Default::default()
            },
            TODAY,
        )
        .expect_err("type is fixed");
        assert_eq!(err.field, "type");
    }
}
