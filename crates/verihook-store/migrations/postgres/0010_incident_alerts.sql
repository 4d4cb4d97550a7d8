-- Operator alerts per incident (CONTRACT §9), durable: written in the transaction that
-- records the outcome turning an endpoint failing (or healthy again), then sent with
-- retries by each node's alert sender, which claims due rows under a lease (`due_at`
-- moved forward) and deletes them once the operator's URL took them.
CREATE TABLE alerts (
    seq BIGSERIAL PRIMARY KEY,
    endpoint_seq  BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    due_at        BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alerts_due ON alerts (due_at);
-- When the incident's last alert (the first, or a reminder) was written, and the first
-- failed event of the incident, for the reminders.
ALTER TABLE endpoints ADD COLUMN alerted_at BIGINT;
ALTER TABLE endpoints ADD COLUMN first_failed_event BIGINT;
