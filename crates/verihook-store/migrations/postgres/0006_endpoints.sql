-- Several endpoints per organization; see the SQLite migration for the model. The outbox,
-- the attempt log and the failed list are keyed per (event, endpoint).

CREATE TABLE endpoints (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    organization_id   TEXT NOT NULL,
    url               TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    event_types       TEXT NOT NULL DEFAULT '',
    secret            TEXT NOT NULL,
    signature_scheme  TEXT NOT NULL DEFAULT 'verihook',
    retry_schedule    TEXT,
    auto_recover      BOOLEAN NOT NULL DEFAULT TRUE,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    is_default        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);

CREATE INDEX endpoints_by_organization ON endpoints (organization_id, seq)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX endpoints_one_default ON endpoints (organization_id)
    WHERE is_default AND deleted_at IS NULL;

INSERT INTO endpoints (id, organization_id, url, secret, is_default, created_at)
SELECT 'ep_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24), id, webhook_url,
    webhook_secret, TRUE, created_at
FROM organizations WHERE webhook_url IS NOT NULL AND webhook_secret IS NOT NULL;

ALTER TABLE deliveries ADD COLUMN endpoint_seq BIGINT;
UPDATE deliveries d SET endpoint_seq = en.seq FROM endpoints en
    WHERE en.organization_id = d.organization_id;
-- Deliveries of organizations without a URL wait, parked under endpoint 0, for the first.
UPDATE deliveries SET endpoint_seq = 0 WHERE endpoint_seq IS NULL;
ALTER TABLE deliveries ALTER COLUMN endpoint_seq SET NOT NULL;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries ADD PRIMARY KEY (event_seq, endpoint_seq);
ALTER TABLE deliveries DROP COLUMN organization_id;
CREATE INDEX deliveries_due_per_endpoint ON deliveries (endpoint_seq, due_at);

ALTER TABLE attempts ADD COLUMN endpoint_seq BIGINT NOT NULL DEFAULT 0;
UPDATE attempts a SET endpoint_seq = en.seq FROM events e, endpoints en
    WHERE e.seq = a.event_seq AND en.organization_id = e.organization_id;
ALTER TABLE attempts ALTER COLUMN endpoint_seq DROP DEFAULT;
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ADD PRIMARY KEY (event_seq, endpoint_seq, attempt);

ALTER TABLE failed_events ADD COLUMN endpoint_seq BIGINT NOT NULL DEFAULT 0;
UPDATE failed_events f SET endpoint_seq = en.seq FROM endpoints en
    WHERE en.organization_id = f.organization_id;
ALTER TABLE failed_events ALTER COLUMN endpoint_seq DROP DEFAULT;
ALTER TABLE failed_events DROP CONSTRAINT failed_events_pkey;
ALTER TABLE failed_events ADD PRIMARY KEY (event_seq, endpoint_seq);

ALTER TABLE organizations DROP COLUMN webhook_url;
ALTER TABLE organizations DROP COLUMN webhook_secret;
