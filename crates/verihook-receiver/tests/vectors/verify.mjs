// Checks vectors.json with Node's crypto module, independently of verihook, the way the
// product document's JavaScript example does (timingSafeEqual on the hex strings), and
// checks that re-serializing the body (JSON.stringify(JSON.parse(body))) keeps it intact
// wherever the body is compact JSON.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
let failures = 0;
for (const c of vectors.cases) {
  const expected = createHmac('sha256', c.secret).update(`${c.timestamp}.${c.body}`).digest('hex');
  const valid = expected.length === c.signature.length
    && timingSafeEqual(Buffer.from(expected), Buffer.from(c.signature));
  if (valid !== c.valid) {
    failures++;
    console.log(`FAIL ${c.name}: valid=${valid}, expected ${c.valid}`);
  }
  if (c.valid && c.body.startsWith('{') && JSON.stringify(JSON.parse(c.body)) !== c.body) {
    failures++;
    console.log(`FAIL ${c.name}: JSON.stringify(JSON.parse(body)) changes the body`);
  }
}
console.log(`node: ${vectors.cases.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
