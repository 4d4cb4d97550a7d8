-- An organization's first endpoint adopts the deliveries parked while it had none in
-- slices, each its own transaction, so that a backlog of a million never holds the one
-- writer for seconds: `adopt_from` is the `seq` of the organization's next event to look
-- at, NULL once all are adopted.
ALTER TABLE endpoints ADD COLUMN adopt_from INTEGER;
-- Looked for once a second by every node: the few endpoints with an adoption under way.
CREATE INDEX endpoints_adopting ON endpoints (adopt_from) WHERE adopt_from IS NOT NULL;
