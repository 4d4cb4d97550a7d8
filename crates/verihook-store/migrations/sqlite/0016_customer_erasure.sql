-- The right to erasure (CONTRACT §11). An erased customer keeps its row, without its
-- personal data (NULL) and with `deleted_at`, so that its id stays taken and its events'
-- sequence stays whole; every read of customers leaves it out. SQLite cannot drop a NOT
-- NULL constraint: the table is rebuilt.
CREATE TABLE customers_erasable (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    customer_type       TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    email               TEXT,
    first_name          TEXT,
    last_name           TEXT,
    date_of_birth       TEXT,
    address_line1       TEXT,
    address_line2       TEXT,
    address_city        TEXT,
    address_state       TEXT,
    address_postal_code TEXT,
    address_country     TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_sequence       INTEGER NOT NULL DEFAULT 0,
    deleted_at          INTEGER
) STRICT;
INSERT INTO customers_erasable (seq, id, organization_id, customer_type, status,
    status_reason, email, first_name, last_name, date_of_birth, address_line1,
    address_line2, address_city, address_state, address_postal_code, address_country,
    created_at, updated_at, last_sequence)
SELECT seq, id, organization_id, customer_type, status, status_reason, email, first_name,
    last_name, date_of_birth, address_line1, address_line2, address_city, address_state,
    address_postal_code, address_country, created_at, updated_at, last_sequence
FROM customers;
DROP TABLE customers;
ALTER TABLE customers_erasable RENAME TO customers;
CREATE INDEX customers_by_organization ON customers (organization_id, seq);
CREATE INDEX customers_by_status ON customers (organization_id, status, seq);

-- A kept idempotent answer that shows a customer names it, so that its erasure replaces
-- the answer too.
ALTER TABLE idempotency_keys ADD COLUMN customer_id TEXT;
CREATE INDEX idempotency_keys_by_customer ON idempotency_keys (customer_id)
    WHERE customer_id IS NOT NULL;

-- The audit trail: who erased which customer, when; no personal data.
CREATE TABLE erasures (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id      TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL,
    erased_by        TEXT NOT NULL,
    erased_at        INTEGER NOT NULL
) STRICT;
