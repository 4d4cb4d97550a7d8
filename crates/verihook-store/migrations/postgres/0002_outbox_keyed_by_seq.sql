-- The outbox and the attempt log are keyed by the event's `seq` instead of its random id,
-- as on SQLite (see its migration): ordered keys keep a batch's index work on a few
-- neighbouring pages, and bigint keys are cheaper to compare and to index than text.

CREATE TABLE deliveries_by_seq (
    event_seq        BIGINT PRIMARY KEY REFERENCES events (seq),
    organization_id  TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 1,
    budget_used      BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT
);

INSERT INTO deliveries_by_seq (event_seq, organization_id, due_at, attempt, budget_used, lease_token)
SELECT e.seq, d.organization_id, d.due_at, d.attempt, d.budget_used, d.lease_token
FROM deliveries d JOIN events e ON e.id = d.event_id;

DROP TABLE deliveries;
ALTER TABLE deliveries_by_seq RENAME TO deliveries;
ALTER INDEX deliveries_by_seq_pkey RENAME TO deliveries_pkey;
CREATE INDEX deliveries_by_organization ON deliveries (organization_id, due_at);

CREATE TABLE attempts_by_seq (
    event_seq      BIGINT NOT NULL REFERENCES events (seq),
    attempt        BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    status_code    BIGINT,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (event_seq, attempt)
);

INSERT INTO attempts_by_seq (event_seq, attempt, started_at, duration_ms, status_code,
    error_class, error, response_body)
SELECT e.seq, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error_class, a.error,
    a.response_body
FROM attempts a JOIN events e ON e.id = a.event_id;

DROP TABLE attempts;
ALTER TABLE attempts_by_seq RENAME TO attempts;
ALTER INDEX attempts_by_seq_pkey RENAME TO attempts_pkey;
