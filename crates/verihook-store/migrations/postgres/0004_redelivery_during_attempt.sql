-- As on SQLite (see its migration): a redelivery asked for while an attempt of the event
-- is running is remembered on the outbox row, so that attempt leaves the row due again
-- with a fresh budget instead of deleting it. A claim clears the flag.
ALTER TABLE deliveries ADD COLUMN requeued BOOLEAN NOT NULL DEFAULT FALSE;
