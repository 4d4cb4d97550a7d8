-- The foreign keys of the hot tables go: every row that refers to an organization or an
-- event is written by the store's own statements, in the statement or transaction that
-- writes what it refers to (a customer's change writes its events and their outbox rows
-- together) or under a lease on a row that exists (an attempt, a failed event), and
-- nothing deletes organizations or events without what refers to them.
-- What each check cost, per row: a lookup of the referenced row and a KEY SHARE lock on
-- it. Recording an attempt locked its event's row in another transaction than the one
-- that wrote it, so each attempt also wrote a WAL record and dirtied the event's page;
-- every insert of a customer or event locked its organization's row, one row shared by
-- every concurrent writer of that organization. Measured at 300 events/s (PostgreSQL CPU
-- per event, docs/performance.md).
ALTER TABLE customers DROP CONSTRAINT customers_organization_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_organization_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_by_seq_event_seq_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_by_seq_event_seq_fkey;
ALTER TABLE failed_events DROP CONSTRAINT failed_events_event_seq_fkey;
