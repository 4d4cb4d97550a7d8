-- Idempotent requests (CONTRACT §8): one row per (caller, Idempotency-Key). A request
-- holds its row while it runs (status NULL, held until `held_until`, unix microseconds);
-- its answer is stored when it ends, for an event-producing change in the change's own
-- transaction. `fingerprint` is the SHA-256 (hex) of method, path and body. Rows older
-- than 24 h are overwritten and purged.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       BIGINT,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    held_until   BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Several API keys per organization, revocable; only digests are stored. The key an
-- organization was created with becomes its first (organizations.api_key_digest is no
-- longer read). A revoked key keeps its row, so that every node can see it go.
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    digest           BYTEA NOT NULL UNIQUE,
    prefix           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT,
    revoked_at       BIGINT
);
CREATE INDEX api_keys_by_organization ON api_keys (organization_id, created_at);
CREATE INDEX api_keys_revoked ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
INSERT INTO api_keys (id, organization_id, digest, prefix, created_at)
    SELECT 'key_' || substr(id, 5), id, api_key_digest, 'vhk_', created_at FROM organizations;
