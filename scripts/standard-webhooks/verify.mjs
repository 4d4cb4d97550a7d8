// The deliveries check.py captured, verified with the official `standardwebhooks` package
// (npm), and a tampered body refused by it. Usage: node verify.mjs CAPTURED.json
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const { secret, requests } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const headers = (h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
for (const r of requests) {
  const event = new Webhook(secret).verify(r.body, headers(r.headers));
  if (event.type !== "customer.created") throw new Error(`unexpected ${event.type}`);
  let refused = false;
  try {
    new Webhook(secret).verify(r.body.replace("Jane", "Joan"), headers(r.headers));
  } catch {
    refused = true;
  }
  if (!refused) throw new Error("a tampered body verified");
}
console.log(`standardwebhooks (npm): ${requests.length} delivery verified, tampered body refused`);
