-- The right to erasure (CONTRACT §11). An erased customer keeps its row, without its
-- personal data (NULL) and with `deleted_at`, so that its id stays taken and its events'
-- sequence stays whole; every read of customers leaves it out.
ALTER TABLE customers ALTER COLUMN email DROP NOT NULL;
ALTER TABLE customers ALTER COLUMN first_name DROP NOT NULL;
ALTER TABLE customers ALTER COLUMN last_name DROP NOT NULL;
ALTER TABLE customers ADD COLUMN deleted_at BIGINT;

-- A kept idempotent answer that shows a customer names it, so that its erasure replaces
-- the answer too.
ALTER TABLE idempotency_keys ADD COLUMN customer_id TEXT;
CREATE INDEX idempotency_keys_by_customer ON idempotency_keys (customer_id)
    WHERE customer_id IS NOT NULL;

-- The audit trail: who erased which customer, when; no personal data.
CREATE TABLE erasures (
    seq              BIGSERIAL PRIMARY KEY,
    customer_id      TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL,
    erased_by        TEXT NOT NULL,
    erased_at        BIGINT NOT NULL
);
