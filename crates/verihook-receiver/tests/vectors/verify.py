#!/usr/bin/env python3
"""Checks vectors.json with Python's own hmac module, independently of verihook."""
import hashlib
import hmac
import json
import pathlib
import sys

vectors = json.loads((pathlib.Path(__file__).parent / "vectors.json").read_text("utf-8"))
failures = 0
for case in vectors["cases"]:
    message = f"{case['timestamp']}.{case['body']}".encode("utf-8")
    expected = hmac.new(case["secret"].encode("utf-8"), message, hashlib.sha256).hexdigest()
    valid = hmac.compare_digest(expected, case["signature"])
    if valid != case["valid"]:
        failures += 1
        print(f"FAIL {case['name']}: valid={valid}, expected {case['valid']}")
passed = len(vectors["cases"]) - failures
print(f"python: {passed} passed, {failures} failed")
sys.exit(1 if failures else 0)
