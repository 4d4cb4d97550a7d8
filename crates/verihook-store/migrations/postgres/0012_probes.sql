-- Automatic recovery (CONTRACT §9, `autoRecover`): while an endpoint is failing, its
-- newest failed event is tried again at `probe_at`, the wait (`probe_every`, µs)
-- doubling from 30 s to 10 min; the first success recovers the incident's events.
ALTER TABLE endpoints ADD COLUMN probe_at BIGINT;
ALTER TABLE endpoints ADD COLUMN probe_every BIGINT;
