-- An endpoint's health (CONTRACT §9): failing from the first event that finally fails
-- there until the next successful delivery; `failed_events` counts the events failed
-- since `failing_since`. Times are unix microseconds; written with each batch of
-- recorded attempts, once per endpoint in the batch.
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
ALTER TABLE endpoints ADD COLUMN last_success_at INTEGER;
ALTER TABLE endpoints ADD COLUMN last_failure_at INTEGER;
ALTER TABLE endpoints ADD COLUMN failed_events INTEGER NOT NULL DEFAULT 0;
