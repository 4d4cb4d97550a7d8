-- Events and their attempts, partitioned (CONTRACT §11): by ranges of the event's `seq`,
-- the same ranges for both tables, each range holding one week's events (the store cuts
-- over to the next range on Monday 00:00 UTC, or when a range is full). Every lookup of the
-- hot path is by `seq` and reads one partition; a week whose every event has expired and
-- been delivered is dropped whole (`DROP TABLE`, no row by row deletion, no vacuum), and
-- the rows of the week at the cut-off are deleted in batches as on SQLite. Partitions are
-- named `events_<from>_<to>` and `attempts_<from>_<to>`; a default partition takes
-- anything no range does, so no insert can fail for want of one.
--
-- This migration moves the rows there are into one partition below the sequence's next
-- value, and opens the first week's range above it.

ALTER TABLE events RENAME TO events_before_partitioning;
ALTER INDEX events_pkey RENAME TO events_before_partitioning_pkey;
ALTER INDEX events_by_customer RENAME TO events_before_partitioning_by_customer;
ALTER INDEX events_by_organization RENAME TO events_before_partitioning_by_organization;
ALTER INDEX events_by_time RENAME TO events_before_partitioning_by_time;
ALTER INDEX events_id_key RENAME TO events_before_partitioning_id_key;
ALTER INDEX events_stream RENAME TO events_before_partitioning_stream;
ALTER SEQUENCE events_seq_seq OWNED BY NONE;
ALTER TABLE attempts RENAME TO attempts_before_partitioning;
ALTER INDEX attempts_pkey RENAME TO attempts_before_partitioning_pkey;

CREATE TABLE events (
    seq              BIGINT NOT NULL DEFAULT nextval('events_seq_seq'),
    id               TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    body             TEXT NOT NULL,
    txid             BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    sequence         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
ALTER SEQUENCE events_seq_seq OWNED BY events.seq;

CREATE TABLE attempts (
    event_seq      BIGINT NOT NULL,
    attempt        BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    status_code    BIGINT,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    endpoint_seq   BIGINT NOT NULL,
    PRIMARY KEY (event_seq, endpoint_seq, attempt)
) PARTITION BY RANGE (event_seq);

CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;

-- One partition for what there is, then this week's range: 2^32 values wide.
DO $$
DECLARE
    next_seq BIGINT;
    width CONSTANT BIGINT := 4294967296;
BEGIN
    SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END INTO next_seq
        FROM events_seq_seq;
    IF next_seq > 1 THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (0) TO (%s)',
            'events_0_' || next_seq, next_seq);
        EXECUTE format('CREATE TABLE %I PARTITION OF attempts FOR VALUES FROM (0) TO (%s)',
            'attempts_0_' || next_seq, next_seq);
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
        'events_' || next_seq || '_' || (next_seq + width), next_seq, next_seq + width);
    EXECUTE format('CREATE TABLE %I PARTITION OF attempts FOR VALUES FROM (%s) TO (%s)',
        'attempts_' || next_seq || '_' || (next_seq + width), next_seq, next_seq + width);
END
$$;

INSERT INTO events (seq, id, organization_id, customer_id, event_type, occurred_at, body,
    txid, sequence)
SELECT seq, id, organization_id, customer_id, event_type, occurred_at, body, txid, sequence
FROM events_before_partitioning;
INSERT INTO attempts SELECT event_seq, attempt, started_at, duration_ms, status_code,
    error_class, error, response_body, endpoint_seq FROM attempts_before_partitioning;
DROP TABLE events_before_partitioning;
DROP TABLE attempts_before_partitioning;

-- Ids are random and unique by construction; a partitioned table can hold no unique
-- index without the partition key, so lookups by id use a plain one per partition.
CREATE INDEX events_by_id ON events (id);
CREATE INDEX events_by_customer ON events (customer_id, seq);
CREATE INDEX events_by_organization ON events (organization_id, seq);
CREATE INDEX events_by_time ON events (occurred_at);
CREATE INDEX events_stream ON events (organization_id, txid, seq);
ANALYZE events;
ANALYZE attempts;
