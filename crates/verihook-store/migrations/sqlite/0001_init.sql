-- verihook schema, SQLite flavour. Times are unix microseconds (INTEGER); ids are the
-- prefixed strings of verihook-core. `seq` columns give a stable newest-first order and
-- cheap cursors.

CREATE TABLE organizations (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('sandbox', 'live')),
    api_key_digest  BLOB NOT NULL UNIQUE,
    webhook_url     TEXT,
    webhook_secret  TEXT,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE customers (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
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
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX customers_by_organization ON customers (organization_id, seq);
CREATE INDEX customers_by_status ON customers (organization_id, status, seq);

-- Every event ever emitted, with the exact body that is signed and sent.
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    customer_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    occurred_at      INTEGER NOT NULL,
    body             TEXT NOT NULL,
    delivery_status  TEXT NOT NULL DEFAULT 'pending'
                     CHECK (delivery_status IN ('pending', 'delivered', 'failed'))
) STRICT;

CREATE INDEX events_by_organization ON events (organization_id, seq);
CREATE INDEX events_by_customer ON events (customer_id, seq);
-- Delivered events leave this index: it serves the pending and failed listings.
CREATE INDEX events_by_delivery_status ON events (delivery_status, seq)
    WHERE delivery_status <> 'delivered';

-- The outbox: one row per event still to be delivered, written in the same transaction as
-- the event. A sender claims due rows by moving `due_at` to the end of a lease and setting
-- `lease_token`; it sends with no transaction open, then records the outcome under that
-- token. A process that dies mid-delivery leaves a row that simply falls due again when the
-- lease ends. `attempt` numbers the next attempt of the event (it keeps counting across
-- redeliveries); `budget_used` counts the attempts of the current budget.
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY NOT NULL REFERENCES events (id),
    organization_id  TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 1,
    budget_used      INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT
) STRICT;

-- Claims, and the dispatcher's next wake-up, look at each organization's due deliveries.
CREATE INDEX deliveries_by_organization ON deliveries (organization_id, due_at);

-- The delivery log: one row per attempt.
CREATE TABLE attempts (
    event_id       TEXT NOT NULL REFERENCES events (id),
    attempt        INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (event_id, attempt)
) STRICT;
