-- Rotation without a failed verification: during an overlap the previous secret keeps
-- signing X-Webhook-Signature (receivers not yet updated keep working) while the new one
-- signs X-Webhook-Signature-Next. The overlap ends at `previous_secret_expires_at`
-- (unix microseconds), or when completed (both NULL).
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_expires_at INTEGER;
