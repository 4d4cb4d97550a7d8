-- Retention (CONTRACT §11): the purge takes the oldest events first, by the time they
-- occurred. New rows append at the index's right edge, so keeping it costs inserts little.
CREATE INDEX events_by_time ON events (occurred_at);
