"""Real deliveries from a running verihook, verified with the official `standardwebhooks`
library (PyPI), and a tampered body refused by it. Writes what it received to a JSON file
for the same check with the npm package (verify.mjs).

Usage: python3 check.py path/to/verihook OUT.json
"""

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

received = []


class Capture(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append({"headers": dict(self.headers.items()), "body": body.decode()})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def call(base, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def start_server(binary, work):
    out = open(f"{work}/out.txt", "w+")
    server = subprocess.Popen(
        [binary, "serve", "--dev", "--listen", "127.0.0.1:0",
         "--database-url", f"sqlite://{work}/sw.db"],
        stdout=out, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        text = open(f"{work}/out.txt").read()
        base = re.search(r"verihook listening on (\S+)", text)
        key = re.search(r"API key:\s+(\S+)", text)
        if base and key:
            return server, base.group(1), key.group(1)
        time.sleep(0.1)
    server.kill()
    sys.exit("verihook did not start")


def main():
    binary, out_path = sys.argv[1], sys.argv[2]
    capture = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{capture.server_address[1]}/webhooks"
    with tempfile.TemporaryDirectory() as work:
        server, base, key = start_server(binary, work)
        try:
            endpoint = call(base, key, "POST", "/v1/endpoints",
                            {"url": url, "signatureScheme": "standard-webhooks"})
            customer = {"type": "INDIVIDUAL", "email": "jane@example.com",
                        "firstName": "Jane", "lastName": "Doe"}
            call(base, key, "POST", "/v1/customers", customer)
            deadline = time.time() + 15
            while not received and time.time() < deadline:
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait()
    if not received:
        sys.exit("no delivery arrived")
    secret = endpoint["secret"]
    for r in received:
        event = Webhook(secret).verify(r["body"], r["headers"])
        assert event["type"] == "customer.created", event
        tampered = r["body"].replace("Jane", "Joan")
        try:
            Webhook(secret).verify(tampered, r["headers"])
            sys.exit("a tampered body verified")
        except WebhookVerificationError:
            pass
    with open(out_path, "w") as f:
        json.dump({"secret": secret, "requests": received}, f)
    print(f"standardwebhooks (PyPI): {len(received)} delivery verified, tampered body refused")


main()
