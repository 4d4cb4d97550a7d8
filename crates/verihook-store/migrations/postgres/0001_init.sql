-- verihook schema, PostgreSQL flavour: the same tables and meaning as the SQLite one
-- (times are unix microseconds, ids the prefixed strings of verihook-core).

CREATE TABLE organizations (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('sandbox', 'live')),
    api_key_digest  BYTEA NOT NULL UNIQUE,
    webhook_url     TEXT,
    webhook_secret  TEXT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE customers (
    seq                 BIGSERIAL PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    customer_type       TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    email               TEXT NOT NULL,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    date_of_birth       TEXT,
    address_line1       TEXT,
    address_line2       TEXT,
    address_city        TEXT,
    address_state       TEXT,
    address_postal_code TEXT,
    address_country     TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE INDEX customers_by_organization ON customers (organization_id, seq);
CREATE INDEX customers_by_status ON customers (organization_id, status, seq);

CREATE TABLE events (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    customer_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    body             TEXT NOT NULL,
    delivery_status  TEXT NOT NULL DEFAULT 'pending'
                     CHECK (delivery_status IN ('pending', 'delivered', 'failed'))
);

CREATE INDEX events_by_organization ON events (organization_id, seq);
CREATE INDEX events_by_customer ON events (customer_id, seq);
-- Delivered events leave this index: it serves the pending and failed listings.
CREATE INDEX events_by_delivery_status ON events (delivery_status, seq)
    WHERE delivery_status <> 'delivered';

-- The outbox; see the SQLite migration for how leases work. Claims lock rows with
-- FOR UPDATE SKIP LOCKED, so several nodes never claim the same delivery.
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY REFERENCES events (id),
    organization_id  TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 1,
    budget_used      BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT
);

-- Claims, and the dispatcher's next wake-up, look at each organization's due deliveries.
CREATE INDEX deliveries_by_organization ON deliveries (organization_id, due_at);

CREATE TABLE attempts (
    event_id       TEXT NOT NULL REFERENCES events (id),
    attempt        BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    status_code    BIGINT,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (event_id, attempt)
);
