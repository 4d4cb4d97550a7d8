-- The outbox and the attempt log are keyed by the event's `seq` instead of its random id.
-- With random text keys every claim, record and delete touched a different index page, and
-- each of those pages was written to the WAL whole: at a few thousand deliveries a second
-- the writer spent its time copying pages. Keyed by `seq`, a batch of deliveries touches a
-- few neighbouring pages. The event id stays the only id the API shows.

CREATE TABLE deliveries_by_seq (
    event_seq        INTEGER PRIMARY KEY NOT NULL REFERENCES events (seq),
    organization_id  TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 1,
    budget_used      INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT
) STRICT;

INSERT INTO deliveries_by_seq (event_seq, organization_id, due_at, attempt, budget_used, lease_token)
SELECT e.seq, d.organization_id, d.due_at, d.attempt, d.budget_used, d.lease_token
FROM deliveries d JOIN events e ON e.id = d.event_id;

DROP TABLE deliveries;
ALTER TABLE deliveries_by_seq RENAME TO deliveries;
CREATE INDEX deliveries_by_organization ON deliveries (organization_id, due_at);

-- One b-tree (WITHOUT ROWID) in (event, attempt) order: an event's attempts are
-- neighbours, and new attempts of recent events land on the last pages.
CREATE TABLE attempts_by_seq (
    event_seq      INTEGER NOT NULL REFERENCES events (seq),
    attempt        INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error_class    TEXT,
    error          TEXT,
    response_body  TEXT,
    PRIMARY KEY (event_seq, attempt)
) STRICT, WITHOUT ROWID;

INSERT INTO attempts_by_seq (event_seq, attempt, started_at, duration_ms, status_code,
    error_class, error, response_body)
SELECT e.seq, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error_class, a.error,
    a.response_body
FROM attempts a JOIN events e ON e.id = a.event_id;

DROP TABLE attempts;
ALTER TABLE attempts_by_seq RENAME TO attempts;
