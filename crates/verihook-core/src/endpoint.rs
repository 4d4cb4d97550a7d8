//! Endpoints: the URLs an organization's events go to, which events each takes, and how
//! each is signed and retried.

use crate::delivery::RetryPolicy;
use crate::event::EventType;
use crate::id::{EndpointId, OrganizationId};
use crate::timestamp::Timestamp;
use crate::webhook::{WebhookSecret, WebhookUrl};
pub use verihook_receiver::Scheme as SignatureScheme;

/// At most this many endpoints per organization, the default one included.
pub const MAX_ENDPOINTS: u32 = 50;
/// At most this many characters of description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The event types an endpoint takes: every type when empty, else those listed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventTypes(Vec<EventType>);

impl EventTypes {
    /// Every type.
    pub fn all() -> Self {
        Self::default()
    }

    /// The listed names, in their order without repeats; the first unknown name is the
    /// error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut types = Vec::new();
        for name in names {
            let t = EventType::parse(name).ok_or_else(|| name.to_owned())?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(Self(types))
    }

    pub fn matches(&self, t: EventType) -> bool {
        self.0.is_empty() || self.0.contains(&t)
    }

    pub fn types(&self) -> &[EventType] {
        &self.0
    }

    /// The stored form: `,a,b,` (so that SQL finds `,type,` in it), or empty for every
    /// type.
    pub fn to_stored(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = self.0.iter().map(|t| t.as_str()).collect();
        format!(",{},", names.join(","))
    }

    /// The inverse of [`EventTypes::to_stored`].
    pub fn from_stored(s: &str) -> Result<Self, String> {
        Self::parse(s.split(',').filter(|n| !n.is_empty()))
    }
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub organization_id: OrganizationId,
    pub url: WebhookUrl,
    pub description: String,
    pub event_types: EventTypes,
    pub secret: WebhookSecret,
    pub scheme: SignatureScheme,
    /// `None`: the server's `--retry-schedule`.
    pub retry_schedule: Option<RetryPolicy>,
    /// Stored now; the engine's automatic recovery of a failing endpoint reads it.
    pub auto_recover: bool,
    /// A disabled endpoint gets nothing: no event is queued for it.
    pub disabled: bool,
    /// The endpoint of `PUT /v1/webhook`.
    pub is_default: bool,
    pub created_at: Timestamp,
    /// As the delivery engine last recorded it.
    pub health: EndpointHealth,
}

/// An endpoint's health (CONTRACT §9): failing from the first event that finally fails
/// there until the next successful delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointHealth {
    pub failing_since: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// The last attempt that did not succeed.
    pub last_failure_at: Option<Timestamp>,
    /// Events finally failed since `failing_since`.
    pub failed_events: u64,
}

impl EndpointHealth {
    pub fn is_failing(&self) -> bool {
        self.failing_since.is_some()
    }
}

impl Endpoint {
    /// A new endpoint with the defaults: every event type, verihook's scheme, the server's
    /// retry schedule, automatic recovery on, enabled.
    pub fn new(
        organization_id: OrganizationId,
        url: WebhookUrl,
        secret: WebhookSecret,
        is_default: bool,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: EndpointId::generate(),
            organization_id,
            url,
            description: String::new(),
            event_types: EventTypes::all(),
            secret,
            scheme: SignatureScheme::default(),
            retry_schedule: None,
            auto_recover: true,
            disabled: false,
            is_default,
            created_at,
            health: EndpointHealth::default(),
        }
    }
}

/// The fields of an endpoint that a change may set; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<WebhookUrl>,
    pub description: Option<String>,
    pub event_types: Option<EventTypes>,
    pub scheme: Option<SignatureScheme>,
    /// `Some(None)`: back to the server's schedule.
    pub retry_schedule: Option<Option<RetryPolicy>>,
    pub auto_recover: Option<bool>,
    pub disabled: Option<bool>,
}

impl EndpointPatch {
    pub fn apply(self, e: &mut Endpoint) {
        if let Some(url) = self.url {
            e.url = url;
        }
        if let Some(d) = self.description {
            e.description = d;
        }
        if let Some(t) = self.event_types {
            e.event_types = t;
        }
        if let Some(s) = self.scheme {
            e.scheme = s;
        }
        if let Some(r) = self.retry_schedule {
            e.retry_schedule = r;
        }
        if let Some(a) = self.auto_recover {
            e.auto_recover = a;
        }
        if let Some(d) = self.disabled {
            e.disabled = d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_matches_what_it_lists_and_empty_matches_all() {
        let all = EventTypes::all();
        assert!(EventType::ALL.into_iter().all(|t| all.matches(t)));
        let some =
            EventTypes::parse(["verification.completed", "customer.created"]).expect("known types");
        assert!(some.matches(EventType::CustomerCreated));
        assert!(!some.matches(EventType::CustomerUpdated));
        assert_eq!(
            EventTypes::parse(["customer.created", "customer.archived"]),
            Err("customer.archived".to_owned())
        );
    }

    #[test]
    fn the_stored_form_round_trips_and_is_searchable() {
        let some = EventTypes::parse(["customer.status_changed", "customer.created"])
            .expect("known types");
        let stored = some.to_stored();
        assert_eq!(stored, ",customer.status_changed,customer.created,");
        assert_eq!(EventTypes::from_stored(&stored), Ok(some));
        assert_eq!(EventTypes::all().to_stored(), "");
        assert_eq!(EventTypes::from_stored(""), Ok(EventTypes::all()));
    }
}
