//! SQL both backends run as it is (`$n` placeholders, which SQLite accepts too).

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

pub(crate) const INSERT_DELIVERY: &str =
    "INSERT INTO deliveries (event_seq, organization_id, due_at) VALUES ($1, $2, $3)";

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
    SELECT MIN((SELECT MIN(d.due_at) FROM deliveries d WHERE d.organization_id = o.id)) \
    FROM organizations o WHERE o.webhook_url IS NOT NULL";

/// The claimed deliveries' events, URLs and secrets; `{ids}` is the backend's list form.
pub(crate) const CLAIMED_DETAILS: &str = "\
    SELECT e.seq, e.id, e.organization_id, e.customer_id, e.event_type, e.occurred_at, e.body, \
    'pending' AS delivery_status, o.webhook_url, o.webhook_secret FROM events e \
    JOIN organizations o ON o.id = e.organization_id WHERE e.seq {ids}";

pub(crate) const INSERT_ORGANIZATION: &str = "\
    INSERT INTO organizations (id, name, mode, api_key_digest, created_at) \
    VALUES ($1, $2, $3, $4, $5)";

/// Sets the URL; the secret only if there is none yet.
pub(crate) const SET_WEBHOOK_URL: &str = "\
    UPDATE organizations SET webhook_url = $1, webhook_secret = COALESCE(webhook_secret, $2) \
    WHERE id = $3 RETURNING webhook_url, webhook_secret";

pub(crate) const ROTATE_SECRET: &str = "UPDATE organizations SET webhook_secret = $1 WHERE id = $2";

/// An event whose last attempt failed. (`WHERE true`: SQLite's parser needs it before an
/// upsert clause after a SELECT.)
pub(crate) const MARK_FAILED: &str = "\
    INSERT INTO failed_events (event_seq, organization_id) \
    SELECT seq, organization_id FROM events WHERE seq = $1 \
    ON CONFLICT (event_seq) DO NOTHING";

/// A redelivered event is pending again: it has an outbox row, and is no longer failed.
pub(crate) const UNMARK_FAILED: &str = "DELETE FROM failed_events WHERE event_seq = $1";

/// Where an event is, in the status filter of a listing of `events`.
pub(crate) fn delivery_status_filter(status: crate::DeliveryStatus) -> &'static str {
    match status {
        crate::DeliveryStatus::Pending => " AND seq IN (SELECT event_seq FROM deliveries)",
        crate::DeliveryStatus::Failed => " AND seq IN (SELECT event_seq FROM failed_events)",
        crate::DeliveryStatus::Delivered => {
            " AND seq NOT IN (SELECT event_seq FROM deliveries) \
             AND seq NOT IN (SELECT event_seq FROM failed_events)"
        }
    }
}

/// The organization and `seq` of an event within a scope (`$2` NULL: any).
pub(crate) const EVENT_OWNER: &str = "\
    SELECT organization_id, seq FROM events WHERE id = $1 \
    AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)";

/// The event's final delivery status after an attempt, if the attempt ends its delivery.
pub(crate) fn final_status(next: crate::NextStep) -> Option<&'static str> {
    match next {
        crate::NextStep::Delivered => Some("delivered"),
        crate::NextStep::Failed => Some("failed"),
        crate::NextStep::RetryAt(_) => None,
    }
}
