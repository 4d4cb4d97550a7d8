-- Bulk recovery (CONTRACT §9): the failed events a recovery took, at its creation, are
-- its items; each is redelivered once with a fresh budget. Progress is read, not kept:
-- an item is pending while its delivery is in the outbox, failed when it failed again,
-- delivered otherwise, so recording attempts writes nothing more for recoveries.
CREATE TABLE recoveries (
    seq BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL,
    endpoint_id      TEXT,
    event_type       TEXT,
    since            BIGINT NOT NULL,
    until            BIGINT NOT NULL,
    automatic        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL
);
CREATE INDEX recoveries_by_organization ON recoveries (organization_id, seq);
CREATE TABLE recovery_items (
    recovery_seq  BIGINT NOT NULL,
    event_seq     BIGINT NOT NULL,
    endpoint_seq  BIGINT NOT NULL,
    PRIMARY KEY (recovery_seq, event_seq, endpoint_seq)
);
