-- Several endpoints per organization. An endpoint is a URL with its own secret, signature
-- scheme, event-type filter and retry schedule; the URL of `PUT /v1/webhook` becomes the
-- organization's default endpoint. The outbox, the attempt log and the failed list are
-- kept per (event, endpoint): each endpoint has its own attempts, budget and lease.

CREATE TABLE endpoints (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    organization_id   TEXT NOT NULL,
    url               TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    -- `,type,type,` (searched for `,type,`), or empty for every type.
    event_types       TEXT NOT NULL DEFAULT '',
    secret            TEXT NOT NULL,
    signature_scheme  TEXT NOT NULL DEFAULT 'verihook',
    -- NULL: the server's --retry-schedule.
    retry_schedule    TEXT,
    auto_recover      INTEGER NOT NULL DEFAULT TRUE,
    disabled          INTEGER NOT NULL DEFAULT FALSE,
    is_default        INTEGER NOT NULL DEFAULT FALSE,
    created_at        INTEGER NOT NULL,
    -- A deleted endpoint stays, so that the event log can still name it.
    deleted_at        INTEGER
) STRICT;

CREATE INDEX endpoints_by_organization ON endpoints (organization_id, seq)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX endpoints_one_default ON endpoints (organization_id)
    WHERE is_default AND deleted_at IS NULL;

INSERT INTO endpoints (id, organization_id, url, secret, is_default, created_at)
SELECT 'ep_' || lower(hex(randomblob(12))), id, webhook_url, webhook_secret, TRUE, created_at
FROM organizations WHERE webhook_url IS NOT NULL AND webhook_secret IS NOT NULL;

-- Deliveries queued while an organization had no URL wait, parked under endpoint 0, for
-- its first endpoint (as they waited for its URL before).
CREATE TABLE deliveries_per_endpoint (
    event_seq     INTEGER NOT NULL,
    endpoint_seq  INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 1,
    budget_used   INTEGER NOT NULL DEFAULT 0,
    lease_token   TEXT,
    requeued      INTEGER NOT NULL DEFAULT FALSE,
    PRIMARY KEY (event_seq, endpoint_seq)
) STRICT, WITHOUT ROWID;

INSERT INTO deliveries_per_endpoint (event_seq, endpoint_seq, due_at, attempt, budget_used,
    lease_token, requeued)
SELECT d.event_seq, COALESCE(en.seq, 0), d.due_at, d.attempt, d.budget_used, d.lease_token,
    d.requeued
FROM deliveries d LEFT JOIN endpoints en ON en.organization_id = d.organization_id;

DROP TABLE deliveries;
ALTER TABLE deliveries_per_endpoint RENAME TO deliveries;
-- Claims, and the dispatcher's next wake-up, look at each endpoint's due deliveries.
CREATE INDEX deliveries_due_per_endpoint ON deliveries (endpoint_seq, due_at);

-- Attempts before this migration went to the organization's one URL, now its default
-- endpoint (0 where it has none).
CREATE TABLE attempts_per_endpoint (
    event_seq      INTEGER NOT NULL,
    endpoint_seq   INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (event_seq, endpoint_seq, attempt)
) STRICT, WITHOUT ROWID;

INSERT INTO attempts_per_endpoint (event_seq, endpoint_seq, attempt, started_at, duration_ms,
    status_code, error_class, error, response_body)
SELECT a.event_seq, COALESCE(en.seq, 0), a.attempt, a.started_at, a.duration_ms,
    a.status_code, a.error_class, a.error, a.response_body
FROM attempts a JOIN events e ON e.seq = a.event_seq
LEFT JOIN endpoints en ON en.organization_id = e.organization_id;

DROP TABLE attempts;
ALTER TABLE attempts_per_endpoint RENAME TO attempts;

CREATE TABLE failed_per_endpoint (
    event_seq        INTEGER NOT NULL,
    endpoint_seq     INTEGER NOT NULL,
    organization_id  TEXT NOT NULL,
    PRIMARY KEY (event_seq, endpoint_seq)
) STRICT, WITHOUT ROWID;

INSERT INTO failed_per_endpoint (event_seq, endpoint_seq, organization_id)
SELECT f.event_seq, COALESCE(en.seq, 0), f.organization_id
FROM failed_events f LEFT JOIN endpoints en ON en.organization_id = f.organization_id;

DROP TABLE failed_events;
ALTER TABLE failed_per_endpoint RENAME TO failed_events;
CREATE INDEX failed_events_by_organization ON failed_events (organization_id, event_seq);

ALTER TABLE organizations DROP COLUMN webhook_url;
ALTER TABLE organizations DROP COLUMN webhook_secret;
