"""A verihook webhook receiver in Flask: the product document's sample, made correct.

- The signature is computed over the raw body bytes, never over re-serialized JSON.
- It is compared in constant time.
- The timestamp must be within 5 minutes: a captured request replayed later is refused.
- Each eventId is handled once: a retry or a redelivery is acknowledged, not redone.
- Every event type is acknowledged, known or not, well within the sender's 10 s.

Run: WEBHOOK_SECRET=whsec_... PORT=3001 python3 app.py
"""
import hashlib
import hmac
import json
import os
import re
import sys
import time

from flask import Flask, jsonify, request

SECRET = os.environ.get("WEBHOOK_SECRET", "")
PORT = int(os.environ.get("PORT", "3001"))
TOLERANCE_SECONDS = 5 * 60
KNOWN = {
    "customer.created",
    "customer.updated",
    "customer.status_changed",
    "verification.completed",
    "verification.rfi_required",
}
# In production: a table with the event id as its primary key, so that a duplicate is
# refused by the database even across processes and restarts.
seen = set()

app = Flask(__name__)


def signature_ok(header, timestamp, body):
    if not re.fullmatch(r"[0-9a-f]{64}", header or ""):
        return False
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), header)


def verified(body):
    timestamp = request.headers.get("X-Webhook-Timestamp", "")
    if not re.fullmatch(r"[1-9][0-9]*", timestamp):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    # During a secret rotation the new secret signs X-Webhook-Signature-Next.
    return signature_ok(
        request.headers.get("X-Webhook-Signature"), timestamp, body
    ) or signature_ok(request.headers.get("X-Webhook-Signature-Next"), timestamp, body)


@app.post("/webhooks/verification")
def receive():
    body = request.get_data()  # the raw bytes, exactly as signed
    if not verified(body):
        return jsonify(error="invalid signature"), 401
    try:
        event = json.loads(body)
    except ValueError:
        return jsonify(error="the body is not JSON"), 400
    event_id = event.get("metadata", {}).get("eventId")
    if event_id in seen:
        return jsonify(received=True, duplicate=True), 200
    seen.add(event_id)
    if event.get("type") in KNOWN:
        # Queue the real work (a job, a message); answer now.
        print(event["type"], event.get("payload", {}).get("customerId"), flush=True)
    else:
        # A type added after this receiver was written: acknowledge it, or it is retried.
        print("ignored", event.get("type"), flush=True)
    return jsonify(received=True), 200


if __name__ == "__main__":
    if not SECRET:
        sys.exit("set WEBHOOK_SECRET to the endpoint secret (whsec_...)")
    app.run(host="127.0.0.1", port=PORT)
