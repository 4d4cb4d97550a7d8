-- Paced recovery (CONTRACT §9): a recovery's deliveries wait in the outbox held, due at
-- 2^62 µs plus their event's seq (past any real time, in event order), and are let out
-- per endpoint at `pace` a second, decided at `paced_at` on what the endpoint did since
-- (`paced_failure`: failures of attempts started up to then are answered for), doubling
-- up to `pace_ceiling`. The
-- partial index finds the endpoints with held deliveries without touching the rest of
-- the outbox.
ALTER TABLE endpoints ADD COLUMN pace BIGINT;
ALTER TABLE endpoints ADD COLUMN paced_at BIGINT;
ALTER TABLE endpoints ADD COLUMN paced_failure BIGINT;
ALTER TABLE endpoints ADD COLUMN pace_ceiling BIGINT;
CREATE INDEX deliveries_held ON deliveries (endpoint_seq, due_at)
    WHERE due_at >= 4611686018427387904;
