-- An event's delivery status is no longer a column of the event row, kept up to date by
-- every outcome: it follows from where the event is. Pending: it has an outbox row.
-- Failed: it is in `failed_events`. Delivered: neither. Recording a delivered attempt then
-- writes nothing to `events` (before, it rewrote the row, body included, and its index
-- entries, once per event).

CREATE TABLE failed_events (
    event_seq        INTEGER PRIMARY KEY NOT NULL REFERENCES events (seq),
    organization_id  TEXT NOT NULL
) STRICT;

-- The failed listing of one organization, newest first.
CREATE INDEX failed_events_by_organization ON failed_events (organization_id, event_seq);

INSERT INTO failed_events (event_seq, organization_id)
SELECT seq, organization_id FROM events WHERE delivery_status = 'failed';

DROP INDEX events_by_delivery_status;
ALTER TABLE events DROP COLUMN delivery_status;
