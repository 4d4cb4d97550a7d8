//! SQL both backends run as it is (`$n` placeholders, numbered in order of first
//! appearance, which SQLite requires and PostgreSQL does not mind), and [`Query`], which
//! builds the listings' statements with their parameters.

use crate::rows::Value;
use std::fmt::Write;
use std::sync::LazyLock;
use verihook_core::DeliveryStatus;

/// A customer row's columns, in the order [`crate::rows::customer_params`] gives them.
macro_rules! customer_columns {
    () => {
        "INSERT INTO customers (id, organization_id, customer_type, status, status_reason, \
         email, first_name, last_name, date_of_birth, address_line1, address_line2, \
         address_city, address_state, address_postal_code, address_country, created_at, \
         updated_at, last_sequence) "
    };
}
pub(crate) use customer_columns;

/// A stored customer changes in every column but its identity and order.
macro_rules! customer_upserted {
    () => {
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
         status_reason = excluded.status_reason, email = excluded.email, \
         first_name = excluded.first_name, last_name = excluded.last_name, \
         date_of_birth = excluded.date_of_birth, address_line1 = excluded.address_line1, \
         address_line2 = excluded.address_line2, address_city = excluded.address_city, \
         address_state = excluded.address_state, \
         address_postal_code = excluded.address_postal_code, \
         address_country = excluded.address_country, updated_at = excluded.updated_at, \
         last_sequence = excluded.last_sequence"
    };
}
pub(crate) use customer_upserted;

pub(crate) const UPSERT_CUSTOMER: &str = concat!(
    customer_columns!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    customer_upserted!()
);

pub(crate) const INSERT_EVENT: &str = "\
    INSERT INTO events (id, organization_id, customer_id, event_type, occurred_at, sequence, \
    body) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const RESCHEDULE_DELIVERY: &str = "\
    UPDATE deliveries SET due_at = $1, attempt = attempt + 1, budget_used = budget_used + 1, \
    lease_token = NULL WHERE event_seq = $2 AND endpoint_seq = $3 AND lease_token = $4 \
    AND NOT requeued";

pub(crate) const DELETE_DELIVERY: &str =
    "DELETE FROM deliveries WHERE event_seq = $1 AND endpoint_seq = $2 AND lease_token = $3 \
    AND NOT requeued";

/// The attempt of a delivery whose redelivery was asked for while it ran: whatever its
/// outcome, the delivery is due again at once (`$1`) with a fresh budget.
pub(crate) const REQUEUE_AFTER_ATTEMPT: &str = "\
    UPDATE deliveries SET due_at = $1, attempt = attempt + 1, budget_used = 0, \
    lease_token = NULL, requeued = FALSE WHERE event_seq = $2 AND endpoint_seq = $3 \
    AND lease_token = $4 AND requeued";

pub(crate) const RELEASE_DELIVERY: &str = "\
    UPDATE deliveries SET due_at = $1, lease_token = NULL WHERE event_seq = $2 \
    AND endpoint_seq = $3 AND lease_token = $4";

pub(crate) const INSERT_ATTEMPT: &str = "\
    INSERT INTO attempts (event_seq, endpoint_seq, attempt, started_at, duration_ms, status_code, \
    error_class, error, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// A delivery already queued keeps its place and attempt number but gets a fresh budget;
/// one in flight (leased) is left to finish its attempt and marked `requeued`, so that
/// attempt leaves it due again rather than ending it (see [`REQUEUE_AFTER_ATTEMPT`]).
pub(crate) const REQUEUE_DELIVERY: &str = "\
    INSERT INTO deliveries (event_seq, endpoint_seq, due_at, attempt, budget_used) \
    VALUES ($1, $2, $3, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts \
        WHERE event_seq = $1 AND endpoint_seq = $2), 0) \
    ON CONFLICT (event_seq, endpoint_seq) DO UPDATE SET budget_used = 0, \
    requeued = (deliveries.lease_token IS NOT NULL), due_at = CASE \
        WHEN deliveries.lease_token IS NULL AND excluded.due_at < deliveries.due_at \
        THEN excluded.due_at ELSE deliveries.due_at END";

/// One index seek per live endpoint, written as a correlated subquery so that no planner
/// turns it into a scan of the outbox (on PostgreSQL, with the dead rows the outbox's
/// churn leaves until vacuum, that scan dominated the database's CPU).
pub(crate) const NEXT_DUE: &str = "\
    SELECT MIN((SELECT MIN(d.due_at) FROM deliveries d WHERE d.endpoint_seq = en.seq)) AS due \
    FROM endpoints en WHERE en.deleted_at IS NULL AND NOT en.disabled";

/// The oldest due time among endpoints below `$2` attempts in flight (`$1`: now). An
/// endpoint at its limit waits on its receiver, not on this server, so its backlog says
/// nothing about the server keeping up (and must not hold up the others). Index seeks per
/// live endpoint.
pub(crate) const OLDEST_DUE: &str = "\
    SELECT MIN(oldest) AS oldest FROM ( \
        SELECT (SELECT MIN(d.due_at) FROM deliveries d WHERE d.endpoint_seq = en.seq) AS oldest, \
        (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries d WHERE d.endpoint_seq = en.seq \
            AND d.due_at > $1 AND d.lease_token IS NOT NULL LIMIT $2) leased) AS leased \
        FROM endpoints en WHERE en.deleted_at IS NULL AND NOT en.disabled) per_endpoint \
    WHERE oldest <= $1 AND leased < $2";

pub(crate) const OUTBOX_SIZE: &str = "SELECT COUNT(*) AS n FROM deliveries";

/// The claimed deliveries' events and endpoints; `{pairs}` is the backend's form of the
/// claimed `(event_seq, endpoint_seq)` pairs, as a table `p`.
pub(crate) const CLAIMED_DETAILS: &str = "\
    SELECT e.seq, e.id, e.organization_id, e.customer_id, e.event_type, e.occurred_at, \
    e.sequence, e.body, \
    en.seq AS endpoint_seq, en.id AS endpoint_id, en.url, en.secret, en.signature_scheme, \
    en.retry_schedule, en.previous_secret, en.previous_secret_expires_at FROM {pairs} \
    JOIN events e ON e.seq = p.event_seq JOIN endpoints en ON en.seq = p.endpoint_seq";

pub(crate) const INSERT_ORGANIZATION: &str = "\
    INSERT INTO organizations (id, name, mode, api_key_digest, created_at) \
    VALUES ($1, $2, $3, $4, $5)";

pub(crate) const ORGANIZATION_BY_KEY: &str =
    "SELECT o.id, o.name, o.mode, o.created_at FROM api_keys k \
    JOIN organizations o ON o.id = k.organization_id WHERE k.digest = $1 AND k.revoked_at IS NULL";

pub(crate) const ORGANIZATION: &str =
    "SELECT id, name, mode, created_at FROM organizations WHERE id = $1";

/// The organization (so that a missing one is told apart) and its default endpoint's URL
/// and secret, if it has one.
pub(crate) const WEBHOOK: &str = "\
    SELECT en.url, en.secret, en.signature_scheme, en.previous_secret, \
    en.previous_secret_expires_at, en.failing_since, en.last_success_at, en.last_failure_at, \
    en.failed_events FROM organizations o LEFT JOIN endpoints en \
    ON en.organization_id = o.id AND en.is_default AND en.deleted_at IS NULL WHERE o.id = $1";

/// Sets the default endpoint's URL, keeping its secret.
pub(crate) const SET_DEFAULT_URL: &str = "\
    UPDATE endpoints SET url = $1 WHERE organization_id = $2 AND is_default \
    AND deleted_at IS NULL RETURNING url, secret";

/// `$1` the new secret; while `$2` (the overlap's end) is later than `$3` (now), the
/// replaced secret keeps signing until then (every `SET` reads the row as it was, so
/// `previous_secret` takes the old `secret`). `{which}` picks the endpoint.
pub(crate) const ROTATE_SECRET: &str = "\
    UPDATE endpoints SET secret = $1, previous_secret = CASE WHEN $2 > $3 THEN secret END, \
    previous_secret_expires_at = CASE WHEN $2 > $3 THEN $2 END \
    WHERE organization_id = $4 AND deleted_at IS NULL AND {which}";

pub(crate) const COMPLETE_ROTATION: &str = "\
    UPDATE endpoints SET previous_secret = NULL, previous_secret_expires_at = NULL \
    WHERE organization_id = $1 AND deleted_at IS NULL AND {which}";

pub(crate) const ORGANIZATION_EXISTS: &str = "SELECT 1 AS one FROM organizations WHERE id = $1";

pub(crate) const ENDPOINT_COLUMNS: &str = "\
    id, organization_id, url, description, event_types, secret, signature_scheme, \
    retry_schedule, auto_recover, disabled, is_default, created_at, failing_since, \
    last_success_at, last_failure_at, failed_events";

/// Each endpoint's health after a batch of recorded attempts, in one statement: `{rows}`
/// is one `($n…)` tuple per endpoint of `v(seq, success, failure, healed, finals, first)`:
/// the end of its last success, the start of its last failed attempt, whether a success
/// came after every final failure (the incident, if any, is over), its events finally
/// failed in the batch, and when the first of those failed.
pub(crate) const RECORD_HEALTH: &str = "\
    WITH v(seq, success, failure, healed, finals, first) AS (VALUES {rows}) \
    UPDATE endpoints SET \
    last_success_at = CASE WHEN v.success IS NULL OR endpoints.last_success_at > v.success \
        THEN endpoints.last_success_at ELSE v.success END, \
    last_failure_at = CASE WHEN v.failure IS NULL OR endpoints.last_failure_at > v.failure \
        THEN endpoints.last_failure_at ELSE v.failure END, \
    failing_since = CASE WHEN v.healed <> 0 THEN NULL \
        WHEN v.finals > 0 THEN COALESCE(endpoints.failing_since, v.first) \
        ELSE endpoints.failing_since END, \
    failed_events = CASE WHEN v.healed <> 0 THEN 0 ELSE endpoints.failed_events + v.finals END \
    FROM v WHERE endpoints.seq = v.seq";

pub(crate) const INSERT_ENDPOINT: &str = "\
    INSERT INTO endpoints (id, organization_id, url, description, event_types, secret, \
    signature_scheme, retry_schedule, auto_recover, disabled, is_default, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, ($9 <> 0), ($10 <> 0), ($11 <> 0), $12)";

/// Every field a change may set, by the endpoint's id within its organization. (Flags are
/// bound as integers, `<> 0` making them booleans on either backend.)
pub(crate) const UPDATE_ENDPOINT: &str = "\
    UPDATE endpoints SET url = $1, description = $2, event_types = $3, signature_scheme = $4, \
    retry_schedule = $5, auto_recover = ($6 <> 0), disabled = ($7 <> 0) \
    WHERE id = $8 AND organization_id = $9 AND deleted_at IS NULL";

pub(crate) const LIVE_ENDPOINTS: &str = "\
    SELECT COUNT(*) AS n FROM endpoints WHERE organization_id = $1 AND deleted_at IS NULL";

/// Deleted, its pending deliveries dropped (and the parked ones it was adopting, from
/// `adopt_from` on); its row stays for the event log.
pub(crate) const DELETE_ENDPOINT: &str = "\
    UPDATE endpoints SET deleted_at = $1 WHERE id = $2 AND organization_id = $3 \
    AND deleted_at IS NULL RETURNING seq, organization_id, adopt_from";

/// The deliveries of an organization that had no endpoint wait under endpoint `seq` 0,
/// which no claim sees: as before endpoints existed, events stored before an organization
/// sets its URL are sent once it does. Its first endpoint adopts those whose type its
/// filter takes; the others are dropped. It does so a slice of the organization's events
/// at a time, each slice in a transaction of its own (see `database::adoption`).
pub(crate) const PARKED: i64 = 0;

/// A slice of an organization's events (`$1`): `$3` of them from `$2` on, of which this
/// reads the last `seq` and how many there are.
pub(crate) const ADOPTION_REACH: &str = "\
    SELECT MAX(seq) AS last, COUNT(*) AS n FROM (SELECT seq FROM events \
    WHERE organization_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3) s";

/// The slice's parked deliveries of the types the filter takes, to the endpoint (`$1` its
/// `seq`, `$2` the organization, `$3` the stored filter, `$4`..`$5` the slice's events).
pub(crate) const ADOPT_PARKED: &str = "\
    UPDATE deliveries SET endpoint_seq = $1 WHERE endpoint_seq = 0 AND event_seq IN ( \
        SELECT seq FROM events WHERE organization_id = $2 AND seq BETWEEN $4 AND $5 \
        AND ($3 = '' OR length(replace($3, ',' || event_type || ',', '')) < length($3)))";

/// The rest of the slice's parked deliveries (`$1` the organization, `$2`..`$3` its events).
pub(crate) const DROP_PARKED: &str = "\
    DELETE FROM deliveries WHERE endpoint_seq = 0 AND event_seq IN ( \
        SELECT seq FROM events WHERE organization_id = $1 AND seq BETWEEN $2 AND $3)";

/// Whether any adoption is under way (read on a reader before a round is written).
pub(crate) const ANY_ADOPTION: &str = "\
    SELECT 1 AS one FROM endpoints WHERE adopt_from IS NOT NULL AND deleted_at IS NULL LIMIT 1";

/// The endpoints with an adoption under way, furthest behind first, at most `$1`.
pub(crate) const ADOPTING_ENDPOINTS: &str = "\
    SELECT seq, organization_id, event_types, disabled, adopt_from FROM endpoints \
    WHERE adopt_from IS NOT NULL AND deleted_at IS NULL ORDER BY adopt_from, seq LIMIT $1";

/// Where the endpoint's adoption stands: the next event to look at (`$1`), or done.
pub(crate) const ADOPTED_UP_TO: &str = "UPDATE endpoints SET adopt_from = $1 WHERE seq = $2";
pub(crate) const ADOPTED_ALL: &str = "UPDATE endpoints SET adopt_from = NULL WHERE seq = $1";

pub(crate) const ENDPOINT_SEQ_BY_ID: &str = "SELECT seq FROM endpoints WHERE id = $1";

pub(crate) const DROP_PENDING_OF_ENDPOINT: &str = "DELETE FROM deliveries WHERE endpoint_seq = $1";

/// A delivery whose last attempt failed (`$1` the endpoint's `seq`, `$2` the event's).
pub(crate) const MARK_FAILED: &str = "\
    INSERT INTO failed_events (event_seq, endpoint_seq, organization_id) \
    SELECT seq, $1, organization_id FROM events WHERE seq = $2 \
    ON CONFLICT (event_seq, endpoint_seq) DO NOTHING";

/// A redelivered delivery is pending again: it has an outbox row, and is no longer failed.
pub(crate) const UNMARK_FAILED: &str =
    "DELETE FROM failed_events WHERE event_seq = $1 AND endpoint_seq = $2";

/// The endpoints event `$1` was queued for: those with a delivery, an attempt or a
/// failure of it.
macro_rules! queued_for_event {
    () => {
        "SELECT endpoint_seq FROM deliveries WHERE event_seq = $1 \
         UNION SELECT endpoint_seq FROM attempts WHERE event_seq = $1 \
         UNION SELECT endpoint_seq FROM failed_events WHERE event_seq = $1"
    };
}

/// The live endpoints an event was queued for.
pub(crate) const ENDPOINTS_OF_EVENT: &str = concat!(
    "SELECT en.seq FROM endpoints en WHERE en.deleted_at IS NULL AND en.seq IN (",
    queued_for_event!(),
    ")"
);

/// One live endpoint of an organization.
pub(crate) const ENDPOINT_SEQ: &str = "\
    SELECT seq FROM endpoints WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL";

/// The live, enabled endpoints of an organization, with their filters.
pub(crate) const ENABLED_ENDPOINTS: &str = "\
    SELECT en.seq, en.event_types FROM endpoints en WHERE en.organization_id = $1 \
    AND en.deleted_at IS NULL AND NOT en.disabled";

/// Where an event stands at each endpoint it was queued for (deleted ones included: the
/// log keeps their history).
pub(crate) const DELIVERIES_OF_EVENT: &str = concat!(
    "SELECT en.id AS endpoint_id, CASE \
        WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = $1 AND d.endpoint_seq = en.seq) \
            THEN 'pending' \
        WHEN EXISTS (SELECT 1 FROM failed_events f WHERE f.event_seq = $1 \
            AND f.endpoint_seq = en.seq) THEN 'failed' \
        ELSE 'delivered' END AS delivery_status \
    FROM endpoints en WHERE en.seq IN (",
    queued_for_event!(),
    ") ORDER BY en.seq"
);

/// The organization, `seq` and type of an event within a scope (`$2` NULL: any).
pub(crate) const EVENT_OWNER: &str = "\
    SELECT organization_id, seq, event_type FROM events WHERE id = $1 \
    AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)";

/// One customer within a scope (`$2` NULL: any); the backend's lock clause may follow.
pub(crate) fn select_customer(lock: &str) -> String {
    format!(
        "SELECT {} FROM customers WHERE id = $1 AND deleted_at IS NULL \
         AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2){lock}",
        crate::rows::CUSTOMER_COLUMNS
    )
}

/// One event within a scope (`$2` NULL: any).
pub(crate) fn select_event() -> String {
    format!(
        "SELECT {} FROM events WHERE id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)",
        crate::rows::EVENT_COLUMNS
    )
}

/// The newest `$2` attempts of an event, oldest first (an event redelivered again and
/// again has no bound on its attempts; its view does).
pub(crate) const ATTEMPTS_OF_EVENT: &str = "\
    SELECT * FROM (SELECT en.id AS endpoint_id, a.endpoint_seq, a.attempt, a.started_at, \
    a.duration_ms, a.status_code, a.error_class, a.error, a.response_body \
    FROM attempts a LEFT JOIN endpoints en ON en.seq = a.endpoint_seq \
    WHERE a.event_seq = $1 \
    ORDER BY a.started_at DESC, a.endpoint_seq DESC, a.attempt DESC LIMIT $2) newest \
    ORDER BY started_at, endpoint_seq, attempt";

pub(crate) const RECENT_ATTEMPTS: &str = "\
    SELECT a.started_at, a.duration_ms, a.status_code FROM ( \
    SELECT seq FROM events WHERE organization_id = $1 \
    ORDER BY seq DESC LIMIT $2) recent \
    JOIN attempts a ON a.event_seq = recent.seq \
    WHERE a.started_at >= $3 ORDER BY a.started_at";

pub(crate) const RECENT_EVENTS: &str = "\
    SELECT occurred_at FROM (SELECT seq, occurred_at FROM events WHERE organization_id = $1 \
    ORDER BY seq DESC LIMIT $2) recent WHERE occurred_at >= $3 ORDER BY seq";

/// The `seq` of a listing's cursor item, which must lie in the listing's scope.
pub(crate) fn cursor_seq(table: &str) -> String {
    format!(
        "SELECT seq FROM {table} WHERE id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)"
    )
}

pub(crate) const MIGRATIONS_APPLIED: &str =
    "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE";

/// Where an event is, in the status filter of a listing of `events`: the aggregate over
/// its endpoints (failed if any failed, else pending if any is pending).
pub(crate) fn delivery_status_filter(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => {
            " AND seq IN (SELECT event_seq FROM deliveries) \
             AND seq NOT IN (SELECT event_seq FROM failed_events)"
        }
        DeliveryStatus::Failed => " AND seq IN (SELECT event_seq FROM failed_events)",
        DeliveryStatus::Delivered => {
            " AND seq NOT IN (SELECT event_seq FROM deliveries) \
             AND seq NOT IN (SELECT event_seq FROM failed_events)"
        }
    }
}

/// The events queued for one endpoint (`{endpoint}`: its bound `seq`), in a listing of
/// `events`: a delivery, an attempt or a failure there (each a key-prefix seek).
pub(crate) const ENDPOINT_FILTER: &str = " AND (EXISTS (SELECT 1 FROM deliveries d \
    WHERE d.event_seq = events.seq AND d.endpoint_seq = {endpoint}) \
    OR EXISTS (SELECT 1 FROM attempts a WHERE a.event_seq = events.seq \
        AND a.endpoint_seq = {endpoint}) \
    OR EXISTS (SELECT 1 FROM failed_events f WHERE f.event_seq = events.seq \
        AND f.endpoint_seq = {endpoint}))";

/// A statement built piece by piece, each bound value numbered in order.
pub(crate) struct Query {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value<'static>>,
}

impl Query {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Pushes `sql` with every `placeholder` in it standing for one bound `value`.
    pub(crate) fn bind_in(&mut self, sql: &str, placeholder: &str, value: Value<'static>) {
        self.params.push(value);
        let numbered = format!("${}", self.params.len());
        self.sql.push_str(&sql.replace(placeholder, &numbered));
    }

    pub(crate) fn bind(&mut self, value: Value<'static>) -> &mut Self {
        self.params.push(value);
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.params.len());
        self
    }
}

pub(crate) const INSERT_API_KEY: &str = "\
    INSERT INTO api_keys (id, organization_id, digest, prefix, created_at) \
    SELECT $1, id, $2, $3, $4 FROM organizations WHERE id = $5";

pub(crate) const API_KEYS: &str = "\
    SELECT id, prefix, created_at, last_used_at FROM api_keys \
    WHERE organization_id = $1 AND revoked_at IS NULL ORDER BY created_at, id";

pub(crate) const REVOKE_API_KEY: &str = "\
    UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND organization_id = $3 \
    AND revoked_at IS NULL";

pub(crate) const REVOKED_SINCE: &str =
    "SELECT digest FROM api_keys WHERE revoked_at IS NOT NULL AND revoked_at >= $1";

/// Only ever forward: uses recorded by several nodes, in any order, keep the latest.
pub(crate) const RECORD_KEY_USE: &str = "\
    UPDATE api_keys SET last_used_at = $1 WHERE digest = $2 \
    AND (last_used_at IS NULL OR last_used_at < $1)";

/// Takes a key that is free: new, expired (`$6`), or held by a request that ended without
/// letting it go (a crashed node: held past `$4`, now). Answers a row when taken.
pub(crate) const BEGIN_IDEMPOTENT: &str = "\
    INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_at, held_until) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, idem_key) DO UPDATE SET \
    fingerprint = excluded.fingerprint, status = NULL, response = NULL, \
    created_at = excluded.created_at, held_until = excluded.held_until \
    WHERE idempotency_keys.created_at < $6 \
    OR (idempotency_keys.status IS NULL AND idempotency_keys.held_until < $4) \
    RETURNING created_at";

pub(crate) const IDEMPOTENT: &str = "\
    SELECT fingerprint, status, response FROM idempotency_keys \
    WHERE scope = $1 AND idem_key = $2";

/// `$5`: the customer the answer shows, if any (its erasure replaces the answer).
pub(crate) const FINISH_IDEMPOTENT: &str = "\
    UPDATE idempotency_keys SET status = $1, response = $2, customer_id = $5 \
    WHERE scope = $3 AND idem_key = $4";

pub(crate) const ABANDON_IDEMPOTENT: &str =
    "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status IS NULL";

pub(crate) const PURGE_IDEMPOTENT: &str = "\
    DELETE FROM idempotency_keys WHERE (scope, idem_key) IN (SELECT scope, idem_key \
    FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)";

/// The endpoints a batch of outcomes touched, as they stand before it; read (on
/// PostgreSQL) `FOR UPDATE`, in `seq` order, so that two batches recorded at once on
/// several connections see each other's incidents opened or closed, and never alert twice.
pub(crate) const ENDPOINT_STATES: &str = "\
    SELECT seq, id, organization_id, url, failing_since, failed_events, auto_recover \
    FROM endpoints WHERE seq IN ({seqs}) ORDER BY seq";

pub(crate) const EVENT_ID_AND_TYPE: &str = "SELECT id, event_type FROM events WHERE seq = $1";

/// `$1` now, `$2` the first failed event, `$3` the first probe's wait, `$4` the endpoint.
pub(crate) const INCIDENT_OPENED: &str = "\
    UPDATE endpoints SET alerted_at = $1, first_failed_event = $2, probe_at = $1 + $3, \
    probe_every = $3 WHERE seq = $4";

pub(crate) const INCIDENT_CLOSED: &str = "\
    UPDATE endpoints SET alerted_at = NULL, first_failed_event = NULL, probe_at = NULL, \
    probe_every = NULL WHERE seq = $1";

/// Failing endpoints with `autoRecover` whose probe is due (`$1`, now), each with its
/// newest failed event.
pub(crate) const PROBES_DUE: &str = "\
    SELECT en.seq, en.probe_every, (SELECT MAX(f.event_seq) FROM failed_events f \
    WHERE f.endpoint_seq = en.seq) AS event_seq FROM endpoints en \
    WHERE en.failing_since IS NOT NULL AND en.auto_recover AND en.probe_at IS NOT NULL \
    AND en.probe_at <= $1 AND en.deleted_at IS NULL AND NOT en.disabled LIMIT $2";

/// The next probe of an endpoint, unless another node took this one (`$4`: now).
pub(crate) const NEXT_PROBE: &str = "\
    UPDATE endpoints SET probe_at = $1, probe_every = $2 WHERE seq = $3 AND probe_at <= $4";

/// A probe: the event back in the outbox, leased at once (`$5`, `$4` its end), with a
/// budget that leaves it one attempt (`$3`).
pub(crate) const INSERT_PROBE: &str = "\
    INSERT INTO deliveries (event_seq, endpoint_seq, due_at, attempt, budget_used, lease_token) \
    SELECT $1, $2, $4, COALESCE(MAX(a.attempt), 0) + 1, $3, $5 FROM attempts a \
    WHERE a.event_seq = $1 AND a.endpoint_seq = $2 \
    ON CONFLICT (event_seq, endpoint_seq) DO NOTHING RETURNING attempt";

/// [`CLAIMED_DETAILS`] for one delivery: `$1` its event's `seq`, `$2` its endpoint's.
pub(crate) static ONE_CLAIMED_DETAILS: LazyLock<String> = LazyLock::new(|| {
    CLAIMED_DETAILS.replace("{pairs}", "(SELECT $1 AS event_seq, $2 AS endpoint_seq) p")
});

pub(crate) const ANY_FAILED_AT: &str =
    "SELECT 1 AS one FROM failed_events WHERE endpoint_seq = $1 LIMIT 1";

pub(crate) const UNMARK_FAILED_ONE: &str =
    "DELETE FROM failed_events WHERE event_seq = $1 AND endpoint_seq = $2";

pub(crate) const INSERT_ALERT: &str = "\
    INSERT INTO alerts (endpoint_seq, kind, body, created_at, due_at) VALUES ($1, $2, $3, $4, $4)";

/// Due alerts (by `$2`, now) under a lease: their due time moves to `$1` (the lease's end), so another
/// node's claim (re-checking `due_at` on the row it waited for) skips them.
pub(crate) const CLAIM_ALERTS: &str = "\
    UPDATE alerts SET due_at = $1, attempts = attempts + 1 WHERE seq IN \
    (SELECT seq FROM alerts WHERE due_at <= $2 ORDER BY due_at LIMIT $3) AND due_at <= $2 \
    RETURNING seq, kind, body, attempts";

pub(crate) const DELETE_ALERT: &str = "DELETE FROM alerts WHERE seq = $1";

pub(crate) const RETRY_ALERT: &str = "UPDATE alerts SET due_at = $1 WHERE seq = $2";

/// Failing endpoints whose last alert is older than `$1`, with their incident's first
/// failed event.
pub(crate) const REMINDERS_DUE: &str = "\
    SELECT en.seq, en.id, en.organization_id, en.url, en.failing_since, en.failed_events, \
    ev.id AS event_id, ev.event_type FROM endpoints en \
    LEFT JOIN events ev ON ev.seq = en.first_failed_event \
    WHERE en.failing_since IS NOT NULL AND en.alerted_at IS NOT NULL AND en.alerted_at < $1 \
    AND en.deleted_at IS NULL";

pub(crate) const REMINDED: &str = "UPDATE endpoints SET alerted_at = $1 WHERE seq = $2";

pub(crate) const INSERT_RECOVERY: &str = "\
    INSERT INTO recoveries (id, organization_id, endpoint_id, event_type, since, until, \
    automatic, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";

/// The failed events a recovery takes: `$1` the recovery, `$2` the organization, `$3..$4`
/// the window (the events' times), `$5` an endpoint id or NULL, `$6` a type or NULL. Only
/// endpoints that still exist and are enabled.
pub(crate) const TAKE_FAILED: &str = "\
    INSERT INTO recovery_items (recovery_seq, event_seq, endpoint_seq) \
    SELECT $1, f.event_seq, f.endpoint_seq FROM failed_events f \
    JOIN events e ON e.seq = f.event_seq JOIN endpoints en ON en.seq = f.endpoint_seq \
    WHERE f.organization_id = $2 AND e.occurred_at >= $3 AND e.occurred_at <= $4 \
    AND ($5 IS NULL OR en.id = $5) AND ($6 IS NULL OR e.event_type = $6) \
    AND en.deleted_at IS NULL AND NOT en.disabled";

/// The recovery's (`$1`) items back in the outbox with a fresh budget, held: due at
/// 2^62 µs (past any real time) plus their event's seq, so that the claim never reaches
/// them and the pacing lets them out oldest first by an index range. (2^62 is written out
/// here and below as in the `deliveries_held` index's predicate: the planner matches a
/// partial index only against the same literal.)
pub(crate) const REQUEUE_RECOVERED: &str = "\
    INSERT INTO deliveries (event_seq, endpoint_seq, due_at, attempt, budget_used) \
    SELECT r.event_seq, r.endpoint_seq, 4611686018427387904 + r.event_seq, \
    COALESCE((SELECT MAX(a.attempt) FROM attempts a WHERE a.event_seq = r.event_seq \
        AND a.endpoint_seq = r.endpoint_seq), 0) + 1, 0 \
    FROM recovery_items r WHERE r.recovery_seq = $1 \
    ON CONFLICT (event_seq, endpoint_seq) DO NOTHING";

/// Live endpoints holding recovered deliveries whose pace was last decided at or before
/// `$1` (or never), with what they did since, how many of their deliveries are due (`$2`:
/// now) and unsent, and how many fall due by `$4` (the end of the coming tick: retries
/// among them), each counted up to `$3`.
pub(crate) const PACING_DUE: &str = "\
    SELECT en.seq, en.pace, en.pace_ceiling, en.paced_at, en.paced_failure, en.last_success_at, \
    en.last_failure_at, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries d \
        WHERE d.endpoint_seq = en.seq AND d.due_at <= $2 AND d.lease_token IS NULL \
        LIMIT $3) w) AS waiting, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries d \
        WHERE d.endpoint_seq = en.seq AND d.due_at <= $4 AND d.lease_token IS NULL \
        LIMIT $3) c) AS coming \
    FROM endpoints en WHERE en.seq IN (SELECT h.endpoint_seq FROM deliveries h \
        WHERE h.due_at >= 4611686018427387904) \
    AND (en.paced_at IS NULL OR en.paced_at <= $1) AND en.deleted_at IS NULL AND NOT en.disabled";

/// The endpoint's (`$3`) new pace (`$1`, its ceiling `$5`), decided now (`$2`), failures
/// up to `$6` answered for, unless another node decided it since `$4`.
pub(crate) const PACE_DECIDED: &str = "\
    UPDATE endpoints SET pace = $1, paced_at = $2, pace_ceiling = $5, paced_failure = $6 \
    WHERE seq = $3 AND (paced_at IS NULL OR paced_at <= $4)";

/// Lets out the endpoint's (`$1`) oldest `$4` held deliveries, spread over `$5` slices of
/// `$3` µs from `$2` (a slice, not each delivery, due at its own time: one claim takes it).
pub(crate) const RELEASE_HELD: &str = "\
    UPDATE deliveries SET due_at = $2 + ((h.n - 1) * $5 / $4) * $3 FROM ( \
        SELECT event_seq, ROW_NUMBER() OVER (ORDER BY due_at) AS n FROM deliveries \
        WHERE endpoint_seq = $1 AND due_at >= 4611686018427387904 \
        ORDER BY due_at LIMIT $4) h \
    WHERE deliveries.endpoint_seq = $1 AND deliveries.event_seq = h.event_seq";

pub(crate) const UNMARK_RECOVERED: &str = "\
    DELETE FROM failed_events WHERE EXISTS (SELECT 1 FROM recovery_items r \
    WHERE r.recovery_seq = $1 AND r.event_seq = failed_events.event_seq \
    AND r.endpoint_seq = failed_events.endpoint_seq)";

/// Recoveries with their progress (`{which}`: the condition picking them).
pub(crate) const RECOVERIES: &str = "\
    SELECT rc.id, rc.endpoint_id, rc.event_type, rc.since, rc.until, rc.automatic, \
    rc.created_at, \
    (SELECT COUNT(*) FROM recovery_items r WHERE r.recovery_seq = rc.seq) AS total, \
    (SELECT COUNT(*) FROM recovery_items r WHERE r.recovery_seq = rc.seq AND EXISTS \
        (SELECT 1 FROM deliveries d WHERE d.event_seq = r.event_seq \
        AND d.endpoint_seq = r.endpoint_seq)) AS pending, \
    (SELECT COUNT(*) FROM recovery_items r WHERE r.recovery_seq = rc.seq AND EXISTS \
        (SELECT 1 FROM failed_events f WHERE f.event_seq = r.event_seq \
        AND f.endpoint_seq = r.endpoint_seq)) AS failed \
    FROM recoveries rc WHERE rc.organization_id = $1 {which}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_statements_spell_out_2_to_the_62() {
        let held = (1_i64 << 62).to_string();
        for statement in [REQUEUE_RECOVERED, PACING_DUE, RELEASE_HELD] {
            assert!(statement.contains(&held), "{statement}");
        }
    }
}
