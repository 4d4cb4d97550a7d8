-- The event stream (CONTRACT §10) reads an organization's events in the order they became
-- visible to every reader: by the id of the transaction that wrote them, among
-- transactions older than every one still running (see the store's `stream` module). A
-- `seq` taken by a transaction that commits late is then never skipped. Events written
-- before this migration count as transaction 0: settled long ago.
ALTER TABLE events ADD COLUMN txid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_stream ON events (organization_id, txid, seq);
