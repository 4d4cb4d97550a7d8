// A verihook webhook receiver in Express: the product document's sample, made correct.
// - The signature is computed over the raw body bytes, never over re-serialized JSON.
// - It is compared in constant time.
// - The timestamp must be within 5 minutes: a captured request replayed later is refused.
// - Each eventId is handled once: a retry or a redelivery is acknowledged, not redone.
// - Every event type is acknowledged, known or not, well within the sender's 10 s.
// Run: WEBHOOK_SECRET=whsec_... PORT=3000 node server.js
'use strict';
const crypto = require('node:crypto');
const express = require('express');

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('set WEBHOOK_SECRET to the endpoint secret (whsec_...)');
  process.exit(2);
}
const port = Number(process.env.PORT || 3000);
const toleranceSeconds = 5 * 60;
// In production: a table with the event id as its primary key, so that a duplicate is
// refused by the database even across processes and restarts.
const seen = new Set();

function signatureOk(header, timestamp, body) {
  if (!/^[0-9a-f]{64}$/.test(header || '')) return false;
  const expected = crypto
    .createHmac('sha256', secret)
    .update(`${timestamp}.`)
    .update(body)
    .digest('hex');
  return crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(header));
}

function verified(req) {
  const timestamp = req.get('X-Webhook-Timestamp') || '';
  if (!/^[1-9][0-9]*$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  // During a secret rotation the new secret signs X-Webhook-Signature-Next.
  return (
    signatureOk(req.get('X-Webhook-Signature'), timestamp, req.body) ||
    signatureOk(req.get('X-Webhook-Signature-Next'), timestamp, req.body)
  );
}

function handle(event) {
  const customer = event.payload && event.payload.customerId;
  switch (event.type) {
    case 'customer.created':
    case 'customer.updated':
    case 'customer.status_changed':
    case 'verification.completed':
    case 'verification.rfi_required':
      // Queue the real work (a job, a message); answer now.
      console.log(`${event.type} ${customer}`);
      break;
    default:
      // A type added after this receiver was written: acknowledge it, or it is retried.
      console.log(`ignored ${event.type}`);
  }
}

const app = express();
app.post(
  '/webhooks/verification',
  express.raw({ type: () => true, limit: '1mb' }),
  (req, res) => {
    if (!Buffer.isBuffer(req.body) || !verified(req)) {
      return res.status(401).json({ error: 'invalid signature' });
    }
    let event;
    try {
      event = JSON.parse(req.body.toString('utf8'));
    } catch {
      return res.status(400).json({ error: 'the body is not JSON' });
    }
    const id = event.metadata && event.metadata.eventId;
    if (seen.has(id)) {
      return res.status(200).json({ received: true, duplicate: true });
    }
    seen.add(id);
    handle(event);
    return res.status(200).json({ received: true });
  },
);

app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${port}/webhooks/verification`);
});
