//! SQL both backends run as it is (`$n` placeholders, numbered in order of first
//! appearance, which SQLite requires and PostgreSQL does not mind), and [`Query`], which
//! builds the listings' statements with their parameters.

use crate::rows::Value;
use std::fmt::Write;
use verihook_core::DeliveryStatus;

pub(crate) const UPSERT_CUSTOMER: &str = "\
    INSERT INTO customers (id, organization_id, customer_type, status, status_reason, email, \
    first_name, last_name, date_of_birth, address_line1, address_line2, address_city, \
    address_state, address_postal_code, address_country, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
    status_reason = excluded.status_reason, email = excluded.email, \
    first_name = excluded.first_name, last_name = excluded.last_name, \
    date_of_birth = excluded.date_of_birth, address_line1 = excluded.address_line1, \
    address_line2 = excluded.address_line2, address_city = excluded.address_city, \
    address_state = excluded.address_state, address_postal_code = excluded.address_postal_code, \
    address_country = excluded.address_country, updated_at = excluded.updated_at";

pub(crate) const INSERT_EVENT: &str = "\
    INSERT INTO events (id, organization_id, customer_id, event_type, occurred_at, body) \
    VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const RESCHEDULE_DELIVERY: &str = "\
    UPDATE deliveries SET due_at = $1, attempt = attempt + 1, budget_used = budget_used + 1, \
    lease_token = NULL WHERE event_seq = $2 AND lease_token = $3 AND NOT requeued";

pub(crate) const DELETE_DELIVERY: &str =
    "DELETE FROM deliveries WHERE event_seq = $1 AND lease_token = $2 AND NOT requeued";

/// The attempt of a delivery whose redelivery was asked for while it ran: whatever its
/// outcome, the delivery is due again at once (`$1`) with a fresh budget.
pub(crate) const REQUEUE_AFTER_ATTEMPT: &str = "\
    UPDATE deliveries SET due_at = $1, attempt = attempt + 1, budget_used = 0, \
    lease_token = NULL, requeued = FALSE WHERE event_seq = $2 AND lease_token = $3 AND requeued";

pub(crate) const RELEASE_DELIVERY: &str = "\
    UPDATE deliveries SET due_at = $1, lease_token = NULL WHERE event_seq = $2 AND lease_token = $3";

pub(crate) const INSERT_ATTEMPT: &str = "\
    INSERT INTO attempts (event_seq, attempt, started_at, duration_ms, status_code, error_class, \
    error, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// A delivery already queued keeps its place and attempt number but gets a fresh budget;
/// one in flight (leased) is left to finish its attempt and marked `requeued`, so that
/// attempt leaves it due again rather than ending it (see [`REQUEUE_AFTER_ATTEMPT`]).
pub(crate) const REQUEUE_DELIVERY: &str = "\
    INSERT INTO deliveries (event_seq, organization_id, due_at, attempt, budget_used) \
    VALUES ($1, $2, $3, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE event_seq = $1), 0) \
    ON CONFLICT (event_seq) DO UPDATE SET budget_used = 0, \
    requeued = (deliveries.lease_token IS NOT NULL), due_at = CASE \
        WHEN deliveries.lease_token IS NULL AND excluded.due_at < deliveries.due_at \
        THEN excluded.due_at ELSE deliveries.due_at END";

/// One index seek per organization with a webhook URL, written as a correlated subquery so
/// that no planner turns it into a scan of the outbox (on PostgreSQL, with the dead rows
/// the outbox's churn leaves until vacuum, that scan dominated the database's CPU).
pub(crate) const NEXT_DUE: &str = "\
    SELECT MIN((SELECT MIN(d.due_at) FROM deliveries d WHERE d.organization_id = o.id)) AS due \
    FROM organizations o WHERE o.webhook_url IS NOT NULL";

/// The oldest due time among organizations below `$2` attempts in flight (`$1`: now). An
/// organization at its limit waits on its own endpoint, not on this server, so its backlog
/// says nothing about the server keeping up (and must not hold up the others). Index seeks
/// per organization with a URL.
pub(crate) const OLDEST_DUE: &str = "\
    SELECT MIN(oldest) AS oldest FROM ( \
        SELECT (SELECT MIN(d.due_at) FROM deliveries d WHERE d.organization_id = o.id) AS oldest, \
        (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries d WHERE d.organization_id = o.id \
            AND d.due_at > $1 AND d.lease_token IS NOT NULL LIMIT $2) leased) AS leased \
        FROM organizations o WHERE o.webhook_url IS NOT NULL) per_organization \
    WHERE oldest <= $1 AND leased < $2";

pub(crate) const OUTBOX_SIZE: &str = "SELECT COUNT(*) AS n FROM deliveries";

/// The claimed deliveries' events, URLs and secrets; `{seqs}` is the backend's list form.
pub(crate) const CLAIMED_DETAILS: &str = "\
    SELECT e.seq, e.id, e.organization_id, e.customer_id, e.event_type, e.occurred_at, e.body, \
    o.webhook_url, o.webhook_secret FROM events e \
    JOIN organizations o ON o.id = e.organization_id WHERE e.seq {seqs}";

pub(crate) const INSERT_ORGANIZATION: &str = "\
    INSERT INTO organizations (id, name, mode, api_key_digest, created_at) \
    VALUES ($1, $2, $3, $4, $5)";

pub(crate) const ORGANIZATION_BY_KEY: &str =
    "SELECT id, name, mode, created_at FROM organizations WHERE api_key_digest = $1";

pub(crate) const ORGANIZATION: &str =
    "SELECT id, name, mode, created_at FROM organizations WHERE id = $1";

pub(crate) const WEBHOOK: &str =
    "SELECT webhook_url, webhook_secret FROM organizations WHERE id = $1";

/// Sets the URL; the secret only if there is none yet.
pub(crate) const SET_WEBHOOK_URL: &str = "\
    UPDATE organizations SET webhook_url = $1, webhook_secret = COALESCE(webhook_secret, $2) \
    WHERE id = $3 RETURNING webhook_url, webhook_secret";

pub(crate) const ROTATE_SECRET: &str = "UPDATE organizations SET webhook_secret = $1 WHERE id = $2";

/// An event whose last attempt failed.
pub(crate) const MARK_FAILED: &str = "\
    INSERT INTO failed_events (event_seq, organization_id) \
    SELECT seq, organization_id FROM events WHERE seq = $1 \
    ON CONFLICT (event_seq) DO NOTHING";

/// A redelivered event is pending again: it has an outbox row, and is no longer failed.
pub(crate) const UNMARK_FAILED: &str = "DELETE FROM failed_events WHERE event_seq = $1";

/// The organization and `seq` of an event within a scope (`$2` NULL: any).
pub(crate) const EVENT_OWNER: &str = "\
    SELECT organization_id, seq FROM events WHERE id = $1 \
    AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)";

/// One customer within a scope (`$2` NULL: any); the backend's lock clause may follow.
pub(crate) fn select_customer(lock: &str) -> String {
    format!(
        "SELECT {} FROM customers WHERE id = $1 \
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

pub(crate) const ATTEMPTS_OF_EVENT: &str = "\
    SELECT attempt, started_at, duration_ms, status_code, error_class, error, response_body \
    FROM attempts WHERE event_seq = $1 ORDER BY attempt";

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

/// Where an event is, in the status filter of a listing of `events`.
pub(crate) fn delivery_status_filter(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => " AND seq IN (SELECT event_seq FROM deliveries)",
        DeliveryStatus::Failed => " AND seq IN (SELECT event_seq FROM failed_events)",
        DeliveryStatus::Delivered => {
            " AND seq NOT IN (SELECT event_seq FROM deliveries) \
             AND seq NOT IN (SELECT event_seq FROM failed_events)"
        }
    }
}

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

    pub(crate) fn bind(&mut self, value: Value<'static>) -> &mut Self {
        self.params.push(value);
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.params.len());
        self
    }
}
