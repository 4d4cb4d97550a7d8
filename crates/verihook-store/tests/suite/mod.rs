//! The storage test suite, written once against the `Store` trait and run for every
//! backend (see `tests/sqlite.rs`). A backend provides a fresh database and a way to make
//! event inserts fail, to prove that a change and its events are stored atomically.

mod endpoints;
mod health;
mod lifecycle;
mod recoveries;
mod requests;
mod stream;
pub use endpoints::*;
pub use health::*;
pub use lifecycle::*;
pub use recoveries::*;
pub use requests::*;
pub use stream::*;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use time::macros::date;
use verihook_core::country::CountryCode;
use verihook_core::customer::{Email, Text};
use verihook_core::{
    AddressPatch, ApiKey, Customer, CustomerChange, CustomerId, CustomerPatch, CustomerStatus,
    CustomerType, DeliveryStatus, DomainError, ErrorClass, Event, EventType, Mode, NewCustomer,
    Organization, Timestamp, TransitionPolicy, WebhookSecret, WebhookUrl,
};
use verihook_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, EventFilter, Mutation, NewApiKey,
    NextStep, Outbox, PageRequest, Recorded, Ridden, Scope, Storage, StoreError,
};

pub trait Backend: Sized {
    /// Whether this backend's tests can run here (each says so when they cannot).
    fn available(test: &str) -> impl Future<Output = bool> {
        let _ = test;
        std::future::ready(true)
    }
    fn fresh() -> impl Future<Output = Self>;
    fn store(&self) -> Storage;
    /// From now on, every insert into the events table fails inside the database.
    fn fail_event_inserts(&self) -> impl Future<Output = ()>;
    /// From now on, the database refuses to insert the customer `id`.
    fn refuse_customer(&self, id: &str) -> impl Future<Output = ()>;
    /// Runs `sql` on the database (a test's shortcut past a wait, say).
    fn run_sql(&self, sql: &str) -> impl Future<Output = ()>;
    /// Runs `sql`, a query of one count, on the database.
    fn count(&self, sql: &str) -> impl Future<Output = i64>;
    /// Closes the store and opens the same database again.
    fn reopen(&mut self) -> impl Future<Output = ()>;
    /// Every byte the database keeps of its rows: SQLite's file after a checkpoint (and
    /// its WAL), PostgreSQL's every row of every table as text.
    fn stored_bytes(&self) -> impl Future<Output = Vec<u8>>;
    /// A second node on the same database (its own connections and writer) where the
    /// backend has several nodes; SQLite has one process, and gives the same store.
    fn another_node(&self) -> impl Future<Output = Storage>;
    /// A database with only the first migration applied and `seed` (SQL) run on it,
    /// then opened by the store, which applies the rest.
    fn upgraded_from_first_schema(seed: &str) -> impl Future<Output = Self>;
    /// How this backend's SQL writes the 32-byte API key digest `[7; 32]`.
    const DIGEST_LITERAL: &'static str;
}

/// The references that foreign keys would guard, each a row's to another. The outbox, the
/// attempt log and the failed events have none on either backend, nor PostgreSQL's
/// customers and events (migration 0005): the store's own writes keep these references
/// (a change writes its events and their outbox rows together; an attempt or a failure
/// is written under a lease on a row that exists; a purge takes an event's rows with
/// it), and the tests that write and delete them check that they did.
///
/// `(table, column, referred table, its key, a value that refers to nothing)`. Endpoint 0:
/// parked, waiting for the organization's first endpoint.
const REFERENCES: [(&str, &str, &str, &str, Option<&str>); 6] = [
    ("customers", "organization_id", "organizations", "id", None),
    ("events", "organization_id", "organizations", "id", None),
    ("deliveries", "event_seq", "events", "seq", None),
    ("deliveries", "endpoint_seq", "endpoints", "seq", Some("0")),
    ("attempts", "event_seq", "events", "seq", None),
    ("failed_events", "event_seq", "events", "seq", None),
];

/// Asserts that no row refers to what is not there (see [`REFERENCES`]).
pub(crate) async fn assert_no_orphans<B: Backend>(b: &B) {
    for (table, column, referred, key, nothing) in REFERENCES {
        let unset = nothing.map_or(String::new(), |n| format!(" AND r.{column} <> {n}"));
        let sql = format!(
            "SELECT COUNT(*) FROM {table} r WHERE NOT EXISTS \
             (SELECT 1 FROM {referred} x WHERE x.{key} = r.{column}){unset}"
        );
        assert_eq!(
            b.count(&sql).await,
            0,
            "{table}.{column} refers to no {referred}"
        );
    }
}

pub(crate) async fn organization(store: &Storage) -> Organization {
    let org = Organization::new("Acme", Mode::Sandbox, Timestamp::now()).expect("valid");
    let key = ApiKey::generate();
    store
        .organizations
        .create_organization(&org, &NewApiKey::of(&key, Timestamp::now()))
        .await
        .expect("created");
    org
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

pub(crate) fn new_customer(org: &Organization, email: &str) -> CustomerChange {
    let new = NewCustomer {
        customer_type: CustomerType::Individual,
        email: Email::parse(email).expect("valid"),
        first_name: text("Jane"),
        last_name: text("Smith"),
        date_of_birth: None,
        address: Default::default(),
    };
    Customer::create(org.id.clone(), new, Timestamp::now()).expect("rendered")
}

pub async fn customer(store: &Storage, org: &Organization) -> Customer {
    let change = new_customer(org, "jane@example.com");
    let customer = change.customer.clone();
    store
        .customers
        .insert_customer(change)
        .await
        .expect("inserted");
    customer
}

pub(crate) fn force(to: CustomerStatus) -> Mutation {
    Box::new(move |c: &Customer| {
        c.change_status(to, None, TransitionPolicy::Sandbox, Timestamp::now())
    })
}

fn decide(to: CustomerStatus) -> Mutation {
    Box::new(move |c: &Customer| {
        c.change_status(to, None, TransitionPolicy::Workflow, Timestamp::now())
    })
}

/// The customer's events (up to 1,000), in the order they were stored.
pub(crate) async fn events_of(store: &Storage, id: &CustomerId) -> Vec<Event> {
    let filter = EventFilter {
        customer_id: Some(id.clone()),
        ..Default::default()
    };
    let page = PageRequest {
        limit: 1_000,
        after: None,
    };
    let listed = store.events.list_events(Scope::All, &filter, page).await;
    // Listed newest first.
    let events = listed.expect("listed").items.into_iter().rev();
    events.map(|e| e.event).collect()
}

async fn event_types(store: &Storage, id: &CustomerId) -> Vec<EventType> {
    let events = events_of(store, id).await;
    events.into_iter().map(|e| e.event_type).collect()
}

pub async fn is_ready<B: Backend>() {
    let b = B::fresh().await;
    b.store().health.ready().await.expect("ready");
}

pub async fn organizations_are_found_by_key_and_id<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = Organization::new("Acme", Mode::Live, Timestamp::now()).expect("valid");
    let key = ApiKey::generate();
    store
        .organizations
        .create_organization(&org, &NewApiKey::of(&key, Timestamp::now()))
        .await
        .expect("created");
    let by_key = store
        .organizations
        .organization_by_key(ApiKey::digest(key.expose()))
        .await
        .expect("read");
    assert_eq!(by_key.as_ref().map(|o| &o.id), Some(&org.id));
    assert_eq!(by_key.map(|o| o.mode), Some(Mode::Live));
    let by_id = store
        .organizations
        .organization(&org.id)
        .await
        .expect("read");
    assert_eq!(by_id.map(|o| o.name), Some("Acme".to_owned()));
    let other = store
        .organizations
        .organization_by_key(ApiKey::digest("vhk_nope"))
        .await
        .expect("read");
    assert!(other.is_none());
}

pub async fn the_webhook_secret_is_generated_once_and_rotated<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    assert_eq!(
        store
            .organizations
            .webhook(&org.id)
            .await
            .expect("read")
            .map(|w| w.url),
        Some(None)
    );
    let url = WebhookUrl::parse("https://a.example.com/hook", false).expect("valid");
    let first = store
        .organizations
        .set_webhook_url(&org.id, &url, WebhookSecret::generate())
        .await
        .expect("set");
    assert!(first.secret_is_new);
    let url2 = WebhookUrl::parse("https://b.example.com/hook", false).expect("valid");
    let second = store
        .organizations
        .set_webhook_url(&org.id, &url2, WebhookSecret::generate())
        .await
        .expect("set");
    assert!(!second.secret_is_new);
    assert_eq!(second.secret, first.secret);
    assert_eq!(second.url.as_str(), "https://b.example.com/hook");
    let rotated = WebhookSecret::generate();
    let now = Timestamp::now();
    store
        .endpoints
        .rotate_secret(
            &org.id,
            verihook_store::EndpointRef::Default,
            rotated.clone(),
            now,
            now,
        )
        .await
        .expect("rotated");
    let endpoint = store
        .organizations
        .webhook(&org.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(endpoint.secret, Some(rotated));
    let missing = verihook_core::OrganizationId::generate();
    assert!(matches!(
        store
            .organizations
            .set_webhook_url(&missing, &url, WebhookSecret::generate())
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_customer_is_stored_with_its_event_and_outbox_entry<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let change = new_customer(&org, "jane@example.com");
    let event = change.events[0].clone();
    store
        .customers
        .insert_customer(change.clone())
        .await
        .expect("inserted");
    let read = store
        .customers
        .customer(Scope::Organization(&org.id), &change.customer.id)
        .await
        .expect("read");
    assert_eq!(read.as_ref(), Some(&change.customer));
    let record = store
        .events
        .event(Scope::Organization(&org.id), &event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.event, event, "the body is stored byte for byte");
    assert_eq!(record.delivery_status, DeliveryStatus::Pending);
    assert!(record.attempts.is_empty());
}

pub async fn another_organization_sees_nothing<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (mine, theirs) = (organization(&store).await, organization(&store).await);
    let c = customer(&store, &mine).await;
    let scope = Scope::Organization(&theirs.id);
    assert!(store
        .customers
        .customer(scope, &c.id)
        .await
        .expect("read")
        .is_none());
    assert!(matches!(
        store
            .customers
            .modify_customer(scope, &c.id, force(CustomerStatus::Active))
            .await,
        Err(StoreError::NotFound)
    ));
    let events = store
        .events
        .list_events(
            scope,
            &EventFilter::default(),
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert!(events.items.is_empty());
    let page = store
        .customers
        .list_customers(
            &theirs.id,
            None,
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert!(page.items.is_empty());
}

pub async fn a_status_change_is_stored_with_its_events<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let c = customer(&store, &org).await;
    let change = store
        .customers
        .modify_customer(Scope::All, &c.id, force(CustomerStatus::Active))
        .await
        .expect("changed");
    assert_eq!(change.customer.status, CustomerStatus::Active);
    let read = store
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read");
    assert_eq!(read.map(|c| c.status), Some(CustomerStatus::Active));
    assert_eq!(
        event_types(&store, &c.id).await,
        [
            EventType::CustomerCreated,
            EventType::CustomerStatusChanged,
            EventType::VerificationCompleted
        ]
    );
}

pub async fn a_refused_change_writes_nothing<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let c = customer(&store, &org).await;
    let refused = store
        .customers
        .modify_customer(Scope::All, &c.id, decide(CustomerStatus::Active))
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Domain(DomainError::Transition(_)))
    ));
    let read = store
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read");
    assert_eq!(read.map(|c| c.status), Some(CustomerStatus::Created));
    assert_eq!(
        event_types(&store, &c.id).await,
        [EventType::CustomerCreated]
    );
}

pub async fn a_failure_between_the_writes_leaves_neither<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let c = customer(&store, &org).await;
    b.fail_event_inserts().await;
    let failed = store
        .customers
        .modify_customer(Scope::All, &c.id, force(CustomerStatus::Active))
        .await;
    assert!(
        matches!(failed, Err(StoreError::Database(_) | StoreError::Sqlite(_))),
        "{failed:?}"
    );
    let read = store
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read");
    assert_eq!(read.map(|c| c.status), Some(CustomerStatus::Created));
    assert_eq!(
        event_types(&store, &c.id).await,
        [EventType::CustomerCreated]
    );
    let fresh = new_customer(&org, "john@example.com");
    let id = fresh.customer.id.clone();
    assert!(store.customers.insert_customer(fresh).await.is_err());
    assert!(store
        .customers
        .customer(Scope::All, &id)
        .await
        .expect("read")
        .is_none());
}

pub async fn completing_the_data_moves_to_review_in_one_write<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let c = customer(&store, &org).await;
    let patch = CustomerPatch {
        date_of_birth: Some(date!(1990 - 01 - 01)),
        address: Some(AddressPatch {
            line1: Some(text("1 Main St")),
            city: Some(text("Berlin")),
            postal_code: Some(text("10115")),
            country: CountryCode::parse("DE"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let change = store
        .customers
        .modify_customer(
            Scope::Organization(&org.id),
            &c.id,
            Box::new(move |c: &Customer| c.apply_patch(&patch, Timestamp::now())),
        )
        .await
        .expect("patched");
    assert_eq!(change.customer.status, CustomerStatus::UnderReview);
    let read = store
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, change.customer);
    assert_eq!(
        event_types(&store, &c.id).await,
        [
            EventType::CustomerCreated,
            EventType::CustomerUpdated,
            EventType::CustomerStatusChanged
        ]
    );
}

pub async fn pages_run_newest_first_with_cursors<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let change = new_customer(&org, &format!("c{i}@example.com"));
        ids.push(change.customer.id.clone());
        store
            .customers
            .insert_customer(change)
            .await
            .expect("inserted");
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .customers
            .list_customers(
                &org.id,
                None,
                PageRequest {
                    limit: 2,
                    after: after.clone(),
                },
            )
            .await
            .expect("listed");
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        if !page.has_more {
            break;
        }
        after = page.items.last().map(|c| c.id.clone());
    }
    assert_eq!(seen, ids);
    store
        .customers
        .modify_customer(Scope::All, &ids[2], force(CustomerStatus::Active))
        .await
        .expect("changed");
    let active = store
        .customers
        .list_customers(
            &org.id,
            Some(CustomerStatus::Active),
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(
        active.items.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&ids[2]]
    );
    let other = organization(&store).await;
    let foreign_cursor = store
        .customers
        .list_customers(
            &other.id,
            None,
            PageRequest {
                limit: 2,
                after: Some(ids[0].clone()),
            },
        )
        .await;
    assert!(matches!(foreign_cursor, Err(StoreError::UnknownCursor)));
}

pub async fn events_filter_by_type_customer_and_status<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let (a, other) = (customer(&store, &org).await, customer(&store, &org).await);
    store
        .customers
        .modify_customer(Scope::All, &a.id, force(CustomerStatus::Rejected))
        .await
        .expect("changed");
    let list = |filter: EventFilter| {
        let store = store.clone();
        let org = org.id.clone();
        async move {
            store
                .events
                .list_events(
                    Scope::Organization(&org),
                    &filter,
                    PageRequest {
                        limit: 50,
                        after: None,
                    },
                )
                .await
                .expect("listed")
                .items
        }
    };
    let all = list(EventFilter::default()).await;
    assert_eq!(all.len(), 4);
    assert!(all
        .windows(2)
        .all(|w| w[0].event.occurred_at >= w[1].event.occurred_at));
    let completed = list(EventFilter {
        event_type: Some(EventType::VerificationCompleted),
        ..Default::default()
    })
    .await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].event.customer_id, a.id);
    let of_other = list(EventFilter {
        customer_id: Some(other.id.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(of_other.len(), 1);
    let failed = list(EventFilter {
        delivery_status: Some(DeliveryStatus::Failed),
        ..Default::default()
    })
    .await;
    assert!(failed.is_empty());
    let pending = list(EventFilter {
        delivery_status: Some(DeliveryStatus::Pending),
        ..Default::default()
    })
    .await;
    assert_eq!(pending.len(), 4);
}

/// Many writers at once share commits; every write lands, and changes to one customer are
/// serialized, never lost: each successful toggle is one more status change, in order.
/// New customers arriving together are saved in one statement where the backend can: one
/// the database refuses is refused alone, and every other lands with its event and outbox
/// entry.
pub async fn new_customers_saved_together_are_refused_one_by_one<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let bad = new_customer(&org, "bad@example.com");
    let bad_id = bad.customer.id.clone();
    b.refuse_customer(bad_id.as_str()).await;
    let changes = (0..61).map(|i| match i {
        30 => bad.clone(),
        _ => new_customer(&org, &format!("c{i}@example.com")),
    });
    let inserts: Vec<_> = changes
        .map(|change| {
            let store = store.clone();
            let id = change.customer.id.clone();
            tokio::spawn(async move { (id, store.customers.insert_customer(change).await) })
        })
        .collect();
    for handle in inserts {
        let (id, result) = handle.await.expect("joined");
        assert_eq!(result.is_err(), id == bad_id, "{id}: {result:?}");
        let read = store
            .customers
            .customer(Scope::All, &id)
            .await
            .expect("read");
        assert_eq!(read.is_some(), id != bad_id, "{id}");
    }
    let pending = store
        .events
        .list_events(
            Scope::Organization(&org.id),
            &EventFilter::default(),
            PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .expect("listed")
        .items;
    assert_eq!(pending.len(), 60);
    assert!(pending
        .iter()
        .all(|e| e.delivery_status == DeliveryStatus::Pending));
}

pub async fn concurrent_writes_all_land_and_never_interleave<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let inserts = (0..200).map(|i| {
        let store = store.clone();
        let change = new_customer(&org, &format!("c{i}@example.com"));
        tokio::spawn(async move { store.customers.insert_customer(change).await })
    });
    for handle in inserts.collect::<Vec<_>>() {
        handle.await.expect("joined").expect("inserted");
    }
    let page = store
        .customers
        .list_customers(
            &org.id,
            None,
            PageRequest {
                limit: 500,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(page.items.len(), 200);

    let c = customer(&store, &org).await;
    store
        .customers
        .modify_customer(Scope::All, &c.id, force(CustomerStatus::Active))
        .await
        .expect("active");
    let toggles = (0..40).map(|_| {
        let store = store.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            let toggle: Mutation = Box::new(|c: &Customer| {
                let to = match c.status {
                    CustomerStatus::Active => CustomerStatus::Deactivated,
                    _ => CustomerStatus::Active,
                };
                c.change_status(to, None, TransitionPolicy::Workflow, Timestamp::now())
            });
            store
                .customers
                .modify_customer(Scope::All, &id, toggle)
                .await
        })
    });
    for handle in toggles.collect::<Vec<_>>() {
        handle.await.expect("joined").expect("toggled");
    }
    let final_status = store
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read")
        .map(|c| c.status);
    assert_eq!(
        final_status,
        Some(CustomerStatus::Active),
        "40 toggles from ACTIVE"
    );
    let changes = event_types(&store, &c.id)
        .await
        .into_iter()
        .filter(|t| *t == EventType::CustomerStatusChanged)
        .count();
    assert_eq!(changes, 41);
}

pub async fn data_survives_reopening<B: Backend>() {
    let mut b = B::fresh().await;
    let org = organization(&b.store()).await;
    let c = customer(&b.store(), &org).await;
    b.reopen().await;
    let read = b
        .store()
        .customers
        .customer(Scope::All, &c.id)
        .await
        .expect("read");
    assert_eq!(read, Some(c));
    assert!(b
        .store()
        .organizations
        .organization(&org.id)
        .await
        .expect("read")
        .is_some());
}

pub async fn with_webhook(store: &Storage) -> Organization {
    let org = organization(store).await;
    let url = WebhookUrl::parse("https://hooks.example.com/h", false).expect("valid");
    store
        .organizations
        .set_webhook_url(&org.id, &url, WebhookSecret::generate())
        .await
        .expect("set");
    org
}

pub(crate) fn claim(limit: u32) -> ClaimRequest {
    ClaimRequest {
        lease: Duration::from_secs(30),
        limit,
        per_endpoint: 100,
        in_flight: Vec::new(),
    }
}

/// A claim whose lease runs out at once, for the tests of what follows a lost lease.
fn fleeting(limit: u32) -> ClaimRequest {
    ClaimRequest {
        lease: Duration::from_millis(300),
        ..claim(limit)
    }
}

/// The claim repeated until it takes something. Due times are real times (on PostgreSQL
/// the database's clock judges them), so a test waits for them, with a deadline.
pub(crate) async fn claim_when_due(store: &Storage, request: ClaimRequest) -> Vec<ClaimedDelivery> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let claimed = store.outbox.claim(request.clone()).await.expect("claimed");
        if !claimed.is_empty() {
            return claimed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing fell due within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_nothing_due(store: &Storage, why: &str) {
    let claimed = store.outbox.claim(claim(10)).await.expect("claim");
    assert!(claimed.is_empty(), "{why}: claimed {claimed:?}");
}

/// Recording one outcome: `true` if it moved its delivery on, `false` if the lease was
/// lost.
pub(crate) trait RecordOne {
    async fn record_one(&self, outcome: AttemptOutcome) -> Result<bool, StoreError>;
}

impl RecordOne for Arc<dyn Outbox> {
    async fn record_one(&self, outcome: AttemptOutcome) -> Result<bool, StoreError> {
        let recorded = self.record(vec![outcome]).await?;
        Ok(recorded.first() != Some(&Recorded::LeaseLost))
    }
}

fn later(t: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(t.unix_micros() + secs * 1_000_000)
}

/// Claims the next due delivery and records `next` for it (answered `status`); its event.
pub(crate) async fn attempt_next(
    store: &Storage,
    next: NextStep,
    status: u16,
) -> verihook_core::EventId {
    let d = store
        .outbox
        .claim(claim(1))
        .await
        .expect("claimed")
        .remove(0);
    assert!(store
        .outbox
        .record_one(outcome(&d, next, Some(status)))
        .await
        .expect("recorded"));
    d.event.id
}

pub(crate) fn outcome(
    d: &ClaimedDelivery,
    next: NextStep,
    status_code: Option<u16>,
) -> AttemptOutcome {
    AttemptOutcome {
        lease: d.lease.clone(),
        record: AttemptRecord {
            endpoint_id: Some(d.endpoint.clone()),
            attempt: d.attempt,
            started_at: Timestamp::now(),
            duration_ms: 12,
            status_code,
            error_class: status_code
                .filter(|c| *c >= 300)
                .map(|_| ErrorClass::Status),
            error: None,
            response_body: Some("ok".into()),
        },
        next,
    }
}

pub async fn only_endpoints_with_a_url_are_claimed_once_per_lease<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let without_url = organization(&store).await;
    customer(&store, &without_url).await;
    let org = with_webhook(&store).await;
    let c = customer(&store, &org).await;
    let claimed = store.outbox.claim(fleeting(10)).await.expect("claimed");
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    assert_eq!(d.event.customer_id, c.id);
    assert_eq!(d.event.event_type, EventType::CustomerCreated);
    assert_eq!(d.url.as_str(), "https://hooks.example.com/h");
    assert!(d.secret.expose().starts_with("whsec_"));
    assert_eq!((d.attempt, d.budget_used), (1, 0));
    let record = store
        .events
        .event(Scope::All, &d.event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        d.event.body, record.event.body,
        "the stored bytes are what is sent"
    );
    assert!(store
        .outbox
        .claim(claim(10))
        .await
        .expect("claim")
        .is_empty());
    // The lease runs out: the delivery falls due again for whoever asks.
    let again = claim_when_due(&store, claim(10)).await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].lease, d.lease);
    assert!(!store
        .outbox
        .record_one(outcome(d, NextStep::Delivered, Some(200)))
        .await
        .expect("stale"));
    assert!(store
        .outbox
        .record_one(outcome(&again[0], NextStep::Delivered, Some(200)))
        .await
        .expect("recorded"));
}

pub async fn a_delivered_attempt_is_logged_and_final<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    customer(&store, &org).await;
    let now = Timestamp::now();
    let d = store
        .outbox
        .claim(claim(10))
        .await
        .expect("claimed")
        .remove(0);
    assert!(store
        .outbox
        .record_one(outcome(&d, NextStep::Delivered, Some(204)))
        .await
        .expect("recorded"));
    let record = store
        .events
        .event(Scope::All, &d.event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.delivery_status, DeliveryStatus::Delivered);
    assert_eq!(record.attempts.len(), 1);
    assert_eq!(record.attempts[0].status_code, Some(204));
    assert_eq!(record.attempts[0].response_body.as_deref(), Some("ok"));
    assert!(store
        .outbox
        .claim(claim(10))
        .await
        .expect("claim")
        .is_empty());
    // Nothing is left to fall due later either.
    assert_eq!(store.outbox.next_due(&[]).await.expect("read"), None);
    assert_eq!(store.outbox.size().await.expect("read"), 0);
    let samples = |org: Organization, since: Timestamp| {
        let store = store.clone();
        async move {
            let found = store.events.recent_attempts(&org.id, since, 10).await;
            found
                .expect("read")
                .iter()
                .map(|a| a.status_code)
                .collect::<Vec<_>>()
        }
    };
    let made_by = org.id.clone();
    assert_eq!(samples(org.clone(), later(now, -60)).await, [Some(204)]);
    assert!(
        samples(org, later(now, 60)).await.is_empty(),
        "only since then"
    );
    let other = organization(&store).await;
    assert!(
        samples(other, later(now, -60)).await.is_empty(),
        "only the organization's"
    );
    let made = |since| store.events.recent_events(&made_by, since, 10);
    assert_eq!(made(later(now, -60)).await.expect("read").len(), 1);
    assert!(made(later(now, 60)).await.expect("read").is_empty());
}

pub async fn retries_wait_then_fail_and_redelivery_starts_a_fresh_budget<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    customer(&store, &org).await;
    let now = Timestamp::now();
    let first = store
        .outbox
        .claim(claim(10))
        .await
        .expect("claimed")
        .remove(0);
    let retry_at = later(Timestamp::now(), 2);
    let next = NextStep::RetryAt(retry_at);
    assert!(store
        .outbox
        .record_one(outcome(&first, next, Some(500)))
        .await
        .expect("recorded"));
    assert_eq!(
        store.outbox.next_due(&[]).await.expect("read"),
        Some(retry_at)
    );
    assert_nothing_due(&store, "not before its retry is due").await;
    let second = claim_when_due(&store, claim(10)).await.remove(0);
    assert!(Timestamp::now() >= retry_at);
    assert_eq!((second.attempt, second.budget_used), (2, 1));
    assert!(store
        .outbox
        .record_one(outcome(&second, NextStep::Failed, Some(503)))
        .await
        .expect("recorded"));
    let failed = store
        .events
        .event(Scope::All, &first.event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(failed.delivery_status, DeliveryStatus::Failed);
    assert_eq!(
        failed
            .attempts
            .iter()
            .map(|a| a.attempt)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let listed = store
        .events
        .list_events(
            Scope::All,
            &EventFilter {
                delivery_status: Some(DeliveryStatus::Failed),
                ..Default::default()
            },
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(listed.items.len(), 1);

    let other = organization(&store).await;
    assert!(matches!(
        store
            .outbox
            .requeue(Scope::Organization(&other.id), &first.event.id, None, now)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .outbox
        .requeue(
            Scope::Organization(&org.id),
            &first.event.id,
            None,
            Timestamp::now(),
        )
        .await
        .expect("redelivered");
    let pending = store
        .events
        .event(Scope::All, &first.event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(pending.delivery_status, DeliveryStatus::Pending);
    let third = claim_when_due(&store, claim(10)).await.remove(0);
    assert_eq!((third.attempt, third.budget_used), (3, 0));
    assert_eq!(third.event.body, first.event.body);
}

pub async fn claims_are_capped_by_each_organizations_headroom<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (busy, quiet) = (with_webhook(&store).await, with_webhook(&store).await);
    for _ in 0..6 {
        customer(&store, &busy).await;
    }
    customer(&store, &quiet).await;
    let now = Timestamp::now();
    let capped = ClaimRequest {
        per_endpoint: 2,
        ..claim(10)
    };
    let claimed = store.outbox.claim(capped).await.expect("claimed");
    let of = |org: &Organization| {
        claimed
            .iter()
            .filter(|d| d.event.organization_id == org.id)
            .count()
    };
    assert_eq!((of(&busy), of(&quiet)), (2, 1));
    let busy_endpoint = claimed
        .iter()
        .find(|d| d.event.organization_id == busy.id)
        .map(|d| d.endpoint.clone())
        .expect("claimed");
    // With two running here and a limit of three, one more of `busy`: only its headroom.
    let topped_up = ClaimRequest {
        per_endpoint: 3,
        in_flight: vec![(busy_endpoint.clone(), 2)],
        ..claim(10)
    };
    let more = store.outbox.claim(topped_up).await.expect("claimed");
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].event.organization_id, busy.id);
    let excluding = ClaimRequest {
        in_flight: vec![(busy_endpoint, 100)],
        ..claim(10)
    };
    assert!(store
        .outbox
        .claim(excluding)
        .await
        .expect("claimed")
        .is_empty());
    let leases = claimed
        .iter()
        .chain(&more)
        .map(|d| d.lease.clone())
        .collect();
    store.outbox.release(leases, now).await.expect("released");
    assert_eq!(
        store.outbox.claim(claim(10)).await.expect("claimed").len(),
        7
    );
}

/// A redelivery asked for while an attempt is running is not swallowed by that attempt:
/// whatever the attempt's outcome, the event is sent again with a fresh budget.
pub async fn a_redelivery_requested_during_an_attempt_sends_again<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for next in [NextStep::Delivered, NextStep::Failed] {
        customer(&store, &org).await;
        let now = Timestamp::now();
        let running = store
            .outbox
            .claim(claim(10))
            .await
            .expect("claimed")
            .remove(0);
        store
            .outbox
            .requeue(Scope::Organization(&org.id), &running.event.id, None, now)
            .await
            .expect("redelivery accepted");
        assert!(store
            .outbox
            .record_one(outcome(&running, next, Some(200)))
            .await
            .expect("recorded"));
        let record = store
            .events
            .event(Scope::All, &running.event.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(record.delivery_status, DeliveryStatus::Pending, "{next:?}");
        assert_eq!(record.attempts.len(), 1, "the running attempt is logged");
        let again = claim_when_due(&store, claim(10)).await;
        assert_eq!(again.len(), 1, "sent again after {next:?}");
        assert_eq!(again[0].event.id, running.event.id);
        assert_eq!((again[0].attempt, again[0].budget_used), (2, 0));
        assert!(store
            .outbox
            .record_one(outcome(&again[0], NextStep::Delivered, Some(200)))
            .await
            .expect("recorded"));
    }
    assert_eq!(store.outbox.size().await.expect("read"), 0);
}

/// An attempt whose lease ran out (and whose delivery another sender claimed) records
/// nothing: no attempt in the log, no change to the outbox row the other sender holds.
pub async fn an_outcome_under_a_lost_lease_changes_nothing<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    customer(&store, &org).await;
    let now = Timestamp::now();
    let lost = store
        .outbox
        .claim(fleeting(10))
        .await
        .expect("claimed")
        .remove(0);
    let holder = claim_when_due(&store, claim(10)).await.remove(0);
    for next in [
        NextStep::Delivered,
        NextStep::Failed,
        NextStep::RetryAt(later(now, 1)),
    ] {
        assert!(!store
            .outbox
            .record_one(outcome(&lost, next, Some(500)))
            .await
            .expect("answered"));
    }
    store
        .outbox
        .release(vec![lost.lease.clone()], now)
        .await
        .expect("answered");
    let record = store
        .events
        .event(Scope::All, &lost.event.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.delivery_status, DeliveryStatus::Pending);
    assert!(record.attempts.is_empty());
    assert_nothing_due(&store, "the holder's lease still stands").await;
    assert!(store
        .outbox
        .record_one(outcome(&holder, NextStep::Delivered, Some(200)))
        .await
        .expect("recorded"));
}

/// Outcomes recorded by many senders at once share one write (one statement on
/// PostgreSQL), and each sender is answered for its own: here half of them hold lost
/// leases.
pub async fn outcomes_recorded_together_are_each_answered_for_themselves<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for i in 0..10 {
        let change = new_customer(&org, &format!("c{i}@example.com"));
        store
            .customers
            .insert_customer(change)
            .await
            .expect("inserted");
    }
    let lost = store.outbox.claim(fleeting(10)).await.expect("claimed");
    assert_eq!(lost.len(), 10);
    let mut held = Vec::new();
    while held.len() < 10 {
        held.extend(claim_when_due(&store, claim(10)).await);
    }
    let calls = lost
        .iter()
        .map(|d| (d, false))
        .chain(held.iter().map(|d| (d, true)));
    let answers = futures_util::future::join_all(calls.map(|(d, holds)| {
        let outbox = store.outbox.clone();
        async move {
            let applied = outbox
                .record_one(outcome(d, NextStep::Delivered, Some(200)))
                .await
                .expect("answered");
            (d.event.id.clone(), holds, applied)
        }
    }))
    .await;
    for (id, holds, applied) in answers {
        assert_eq!(
            applied, holds,
            "{id}: recorded only under the lease that holds"
        );
        let record = store
            .events
            .event(Scope::All, &id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(record.attempts.len(), 1, "{id}: one attempt logged");
        assert_eq!(record.delivery_status, DeliveryStatus::Delivered);
    }
}

/// The lag is the age of the oldest due delivery, counting only organizations below their
/// limit of attempts in flight: one waiting on its own busy endpoint is left out.
pub async fn lag_counts_only_organizations_below_their_limit<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    assert_eq!(store.outbox.lag(1).await.expect("read"), Duration::ZERO);
    let org = with_webhook(&store).await;
    customer(&store, &org).await;
    customer(&store, &org).await;
    let aged = Duration::from_millis(200);
    // The deliveries age while nothing claims them.
    tokio::time::sleep(aged).await;
    assert!(store.outbox.lag(1).await.expect("read") >= aged);
    let one = ClaimRequest {
        per_endpoint: 1,
        ..claim(10)
    };
    assert_eq!(store.outbox.claim(one).await.expect("claimed").len(), 1);
    assert_eq!(
        store.outbox.lag(1).await.expect("read"),
        Duration::ZERO,
        "at its limit, the organization waits on its endpoint"
    );
    assert!(
        store.outbox.lag(2).await.expect("read") >= aged,
        "below its limit, its due delivery counts"
    );
}

/// The engine's writes are answered with no API write ever coming: many at once, over and
/// over, each round with a deadline. (The SQLite writer once dropped a wake-up that it
/// read among API work, after its sender's write had missed the lane's read, and the
/// engine's writes then waited for the next API write: rarely, and forever.)
pub async fn delivery_writes_are_answered_without_api_traffic<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    for round in 0..2_000 {
        let writes = (0..16).map(|_| store.outbox.release(Vec::new(), Timestamp::now()));
        let answered = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join_all(writes),
        )
        .await;
        let results =
            answered.unwrap_or_else(|_| panic!("round {round}: a write was never answered"));
        assert!(
            results.iter().all(Result::is_ok),
            "round {round}: {results:?}"
        );
    }
}

/// A claim parked behind the next writes runs after them, in their batch, and leases
/// what they made due; one parked after writes it missed runs at once; one taken back
/// before any write claims nothing. (Where the store has several writers it declines,
/// and its sender waits on the work signal instead.)
pub async fn a_parked_claim_rides_the_next_writes_or_is_taken_back<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    // A claim sees every write before it: nothing was missed.
    assert_nothing_due(&store, "no event yet").await;
    let never = || Box::pin(std::future::pending::<Option<ClaimRequest>>());
    let ride = {
        let outbox = store.outbox.clone();
        tokio::spawn(async move { outbox.claim_after_writes(claim(10), never()).await })
    };
    // The claim waits, parked, until a write comes (or, if the write came first, runs
    // when parked): it leases the new customer's event either way.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ride.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the parked claim never ran"
        );
        customer(&store, &org).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ridden = ride.await.expect("joined");
    let Some(ridden) = ridden else {
        // This store declines; it must do so every time.
        let again = store.outbox.claim_after_writes(claim(10), never());
        assert!(again.await.is_none());
        return;
    };
    let Ridden::Ran(Ok(claimed)) = ridden else {
        panic!("the parked claim ran and claimed: {ridden:?}");
    };
    assert!(!claimed.is_empty(), "it leased what the writes made due");
    assert!(
        claimed.iter().all(|d| d.event.organization_id == org.id),
        "{claimed:?}"
    );

    // Writes while no claim is parked: the next parked claim runs at once.
    let missed = customer(&store, &org).await;
    let ridden = tokio::time::timeout(
        Duration::from_secs(10),
        store.outbox.claim_after_writes(claim(100), never()),
    )
    .await
    .expect("a claim parked after missed writes runs at once")
    .expect("this store parks claims");
    let Ridden::Ran(Ok(claimed)) = ridden else {
        panic!("ran: {ridden:?}");
    };
    assert!(
        claimed.iter().any(|d| d.event.customer_id == missed.id),
        "the missed write's event was leased: {claimed:?}"
    );

    // No write at all: taken back when `stop` comes, unrun, nothing leased.
    let ridden = store
        .outbox
        .claim_after_writes(claim(100), Box::pin(async { None }))
        .await
        .expect("this store parks claims");
    assert!(matches!(ridden, Ridden::Stopped), "{ridden:?}");
    let later = customer(&store, &org).await;
    let claimed = claim_when_due(&store, claim(100)).await;
    assert!(
        claimed.iter().any(|d| d.event.customer_id == later.id),
        "the taken-back claim leased nothing, and later events wait to be claimed"
    );
}

/// A parked claim whose wait ends with a fresh request gives way to it: the fresh claim
/// runs at once, with its own limit, and the parked one never runs.
pub async fn a_parked_claim_gives_way_to_a_fresh_one_when_its_wait_ends<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..3 {
        customer(&store, &org).await;
    }
    // A claim of none sees the writes: the next one parked waits for more.
    assert!(store
        .outbox
        .claim(claim(0))
        .await
        .expect("claim")
        .is_empty());
    let fresh = Box::pin(async { Some(claim(100)) });
    let Some(ridden) = store.outbox.claim_after_writes(claim(1), fresh).await else {
        return; // This store has several writers: it parks no claim.
    };
    let Ridden::Renewed(Ok(claimed)) = ridden else {
        panic!("the fresh claim ran in the parked one's place: {ridden:?}");
    };
    assert_eq!(
        claimed.len(),
        3,
        "the fresh claim's limit, not the parked one's"
    );
    assert_nothing_due(&store, "both claims leasing would have leased twice").await;
}

/// One `#[tokio::test]` per suite function for a backend.
#[macro_export]
macro_rules! store_suite {
    ($backend:ty) => {
        $crate::store_suite!(@tests $backend;
            is_ready,
            organizations_are_found_by_key_and_id,
            the_webhook_secret_is_generated_once_and_rotated,
            a_customer_is_stored_with_its_event_and_outbox_entry,
            another_organization_sees_nothing,
            a_status_change_is_stored_with_its_events,
            a_refused_change_writes_nothing,
            a_failure_between_the_writes_leaves_neither,
            completing_the_data_moves_to_review_in_one_write,
            pages_run_newest_first_with_cursors,
            events_filter_by_type_customer_and_status,
            concurrent_writes_all_land_and_never_interleave,
            new_customers_saved_together_are_refused_one_by_one,
            data_survives_reopening,
            only_endpoints_with_a_url_are_claimed_once_per_lease,
            a_delivered_attempt_is_logged_and_final,
            retries_wait_then_fail_and_redelivery_starts_a_fresh_budget,
            claims_are_capped_by_each_organizations_headroom,
            a_redelivery_requested_during_an_attempt_sends_again,
            an_outcome_under_a_lost_lease_changes_nothing,
            outcomes_recorded_together_are_each_answered_for_themselves,
            lag_counts_only_organizations_below_their_limit,
            delivery_writes_are_answered_without_api_traffic,
            a_parked_claim_rides_the_next_writes_or_is_taken_back,
            a_parked_claim_gives_way_to_a_fresh_one_when_its_wait_ends,
            the_outbox_and_attempt_log_survive_the_upgrade,
            endpoints_are_created_listed_changed_and_deleted,
            an_organization_has_at_most_fifty_endpoints,
            an_event_is_queued_for_each_endpoint_whose_filter_takes_it,
            each_endpoint_has_its_own_attempts_headroom_and_redelivery,
            deleting_an_endpoint_drops_its_pending_deliveries,
            without_an_endpoint_events_wait_for_the_first,
            a_first_endpoint_adopts_a_large_backlog_a_slice_at_a_time,
            adoptions_under_way_at_once_each_take_their_own,
            an_endpoint_deleted_during_its_adoption_drops_the_rest,
            the_next_due_time_leaves_out_saturated_endpoints,
            a_rotation_keeps_the_previous_secret_signing_until_its_overlap_ends,
            api_keys_are_created_listed_and_revoked,
            key_use_moves_last_used_forward_only,
            an_idempotency_key_is_held_answered_and_scoped,
            idempotency_keys_are_taken_over_expire_and_purge,
            an_answer_is_stored_with_its_change_or_not_at_all,
            an_events_record_shows_its_newest_hundred_attempts,
            an_endpoint_fails_with_its_first_failed_event_and_heals_with_a_success,
            a_recovery_redelivers_each_failed_event_once_and_reports_progress,
            a_recovery_is_let_out_at_its_endpoint_s_pace,
            the_first_success_after_an_incident_recovers_its_failed_events,
            a_probe_retries_the_newest_failed_event_and_its_success_recovers_the_rest,
            the_stream_reads_later_events_in_order_and_resumes,
            sequences_run_per_customer_without_gap_or_repeat_in_commit_order,
            an_erasure_leaves_no_personal_data_and_emits_customer_deleted,
            expired_events_are_purged_in_batches_but_pending_ones_stay
        );
    };
    (@tests $backend:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                verihook_testkit::log::init();
                if <$backend as suite::Backend>::available(stringify!($name)).await {
                    suite::$name::<$backend>().await;
                }
            }
        )*
    };
}

/// Creates the database at `url` with `backend`'s first migration alone, and runs `seed`.
pub async fn first_schema_with<DB>(url: &str, backend: &str, seed: &str)
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>
        + sqlx::Acquire<'c, Database = DB, Connection = &'c mut DB::Connection>,
{
    use sqlx::Connection;
    let mut conn = DB::Connection::connect(url).await.expect("connected");
    let first = first_migration(backend).await;
    first.run(&mut conn).await.expect("first migration applied");
    sqlx::raw_sql(seed)
        .execute(&mut conn)
        .await
        .expect("seeded");
    conn.close().await.expect("closed");
}

/// A migrator of `backend`'s first migration alone.
async fn first_migration(backend: &str) -> sqlx::migrate::Migrator {
    let dir = tempfile::tempdir().expect("temp dir");
    let name = "0001_init.sql";
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
        .join(name);
    std::fs::copy(source, dir.path().join(name)).expect("first migration copied");
    sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("first migration read")
}

/// Data of the first schema, where the outbox and the attempt log were keyed by event id:
/// one event delivered at its first attempt, one waiting for its second.
fn first_schema_data(digest: &str) -> String {
    let body =
        |id: &str| format!(r#"{{"eventType":"customer.created","metadata":{{"eventId":"{id}"}}}}"#);
    let event = |seq: u32, id: &str, status: &str| {
        format!(
            "INSERT INTO events (seq, id, organization_id, customer_id, event_type, \
             occurred_at, body, delivery_status) VALUES ({seq}, '{id}', '{ORG}', '{CUSTOMER}', \
             'customer.created', 1700000000000000, '{}', '{status}');",
            body(id)
        )
    };
    format!(
        "INSERT INTO organizations (id, name, mode, api_key_digest, webhook_url, \
         webhook_secret, created_at) VALUES ('{ORG}', 'Before', 'sandbox', {digest}, \
         'https://hooks.example.com/h', 'whsec_c2VjcmV0', 1700000000000000); \
         {} {} {} \
         INSERT INTO attempts (event_id, attempt, started_at, duration_ms, status_code, \
         error_class, error, response_body) VALUES \
         ('{DELIVERED}', 1, 1700000000000000, 5, 200, NULL, NULL, 'ok'), \
         ('{WAITING}', 1, 1700000000000000, 7, 500, 'status', 'HTTP 500', 'down'), \
         ('{FAILED}', 1, 1700000000000000, 9, 500, 'status', 'HTTP 500', 'down'); \
         INSERT INTO deliveries (event_id, organization_id, due_at, attempt, budget_used) \
         VALUES ('{WAITING}', '{ORG}', 1700000001000000, 2, 1);",
        event(1, DELIVERED, "delivered"),
        event(2, WAITING, "pending"),
        event(3, FAILED, "failed"),
    )
}

const ORG: &str = "org_00000000000000000000000a";
const CUSTOMER: &str = "cus_00000000000000000000000a";
const DELIVERED: &str = "evt_00000000000000000000000a";
const WAITING: &str = "evt_00000000000000000000000b";
const FAILED: &str = "evt_00000000000000000000000c";

pub async fn the_outbox_and_attempt_log_survive_the_upgrade<B: Backend>() {
    let b = B::upgraded_from_first_schema(&first_schema_data(B::DIGEST_LITERAL)).await;
    let store = b.store();
    let attempts = |id: &'static str| {
        let store = store.clone();
        async move {
            let id = id.parse().expect("valid id");
            let record = store.events.event(Scope::All, &id).await.expect("read");
            let record = record.expect("the event is still there");
            let codes: Vec<_> = record.attempts.iter().map(|a| a.status_code).collect();
            (record.delivery_status, codes)
        }
    };
    assert_eq!(
        attempts(DELIVERED).await,
        (DeliveryStatus::Delivered, vec![Some(200)])
    );
    assert_eq!(
        attempts(WAITING).await,
        (DeliveryStatus::Pending, vec![Some(500)])
    );
    assert_eq!(
        attempts(FAILED).await,
        (DeliveryStatus::Failed, vec![Some(500)])
    );
    let failed = EventFilter {
        delivery_status: Some(DeliveryStatus::Failed),
        ..Default::default()
    };
    let listed = store
        .events
        .list_events(
            Scope::All,
            &failed,
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    let ids: Vec<_> = listed.items.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, [FAILED]);
    let claimed = store.outbox.claim(claim(10)).await.expect("claimed");
    let waiting: Vec<_> = claimed
        .iter()
        .map(|d| (d.event.id.as_str(), d.attempt, d.budget_used))
        .collect();
    assert_eq!(
        waiting,
        [(WAITING, 2, 1)],
        "only the waiting event, at its second attempt"
    );
    assert!(store
        .outbox
        .record_one(outcome(&claimed[0], NextStep::Delivered, Some(200)))
        .await
        .expect("recorded"));
    assert_eq!(
        attempts(WAITING).await,
        (DeliveryStatus::Delivered, vec![Some(500), Some(200)])
    );
    let key_holder = store
        .organizations
        .organization_by_key([7; 32])
        .await
        .expect("read");
    assert!(
        key_holder.is_some(),
        "the organization's key became its first key"
    );
}
