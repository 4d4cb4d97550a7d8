// The verihook dashboard: plain JavaScript over the public API, no build step.
// The API key stays in this tab's sessionStorage. Everything shown from the server is
// written with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "verihook.apiKey";
let selected = null;

async function api(method, path, payload) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    logout("That API key was not accepted.");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  return body;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function statusBadge(element, status) {
  element.textContent = status;
  element.className = `status ${status}`;
}

function logout(message) {
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("whoami").textContent = "";
  $("login-error").textContent = message || "";
}

async function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  await Promise.all([loadWebhook(), loadEndpoints(), loadStats(), loadEvents()]);
}

async function loadWebhook() {
  const hook = await api("GET", "/v1/webhook");
  $("webhook-url").textContent = hook.url || "no webhook URL set";
}

async function loadEndpoints() {
  const list = await api("GET", "/v1/endpoints");
  const body = $("endpoints").tBodies[0];
  body.replaceChildren();
  for (const e of list.data) {
    const row = body.insertRow();
    row.className = "endpoint";
    row.dataset.id = e.id;
    cell(row, e.default ? `${e.id} (default)` : e.id, "mono");
    cell(row, e.url, "mono");
    cell(row, e.eventTypes.length === 0 ? "all" : e.eventTypes.join(", "), "filter");
    cell(row, e.signatureScheme, "scheme");
    cell(row, e.retrySchedule || "server's");
    cell(row, e.disabled ? "disabled" : "enabled");
    const health = cell(row, healthText(e.health), `health ${e.health.state}`);
    if (e.health.state === "failing") {
      const button = document.createElement("button");
      button.className = "recover";
      button.textContent = "Recover all";
      button.addEventListener("click", () =>
        recoverAll(e.id).catch((err) => { $("recovery-status").textContent = err.message; }));
      health.append(" ", button);
    }
  }
}

/** Redelivers every failed event of the endpoint, then follows the recovery's progress. */
async function recoverAll(endpointId) {
  const started = await api("POST", "/v1/events/recover", {
    since: "1970-01-01T00:00:00Z",
    endpointId,
  });
  let recovery = started;
  for (;;) {
    $("recovery-status").textContent =
      `Recovery ${recovery.id}: ${recovery.delivered} of ${recovery.total} delivered, ` +
      `${recovery.failed} failed, ${recovery.pending} pending — ${recovery.status}`;
    if (recovery.status === "completed") break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    recovery = await api("GET", `/v1/recoveries/${recovery.id}`);
  }
  await Promise.all([loadEndpoints(), loadEvents()]);
}

/** "healthy", or "failing since …: N failed events". */
function healthText(h) {
  if (h.state !== "failing") {
    return h.lastSuccessAt ? `healthy (last success ${h.lastSuccessAt})` : "healthy";
  }
  const n = h.failedEvents === 1 ? "1 failed event" : `${h.failedEvents} failed events`;
  return `failing since ${h.failingSince}: ${n}`;
}

async function loadEvents() {
  const page = await api("GET", "/v1/events?limit=50");
  const body = $("events").tBodies[0];
  body.replaceChildren();
  for (const e of page.data) {
    const row = body.insertRow();
    row.className = "event";
    row.dataset.id = e.id;
    if (e.id === selected) row.classList.add("selected");
    cell(row, e.id).className = "mono";
    cell(row, e.type);
    cell(row, e.customerId);
    cell(row, e.occurredAt);
    statusBadge(cell(row, ""), e.deliveryStatus);
    row.addEventListener("click", () => showEvent(e.id));
  }
}

async function showEvent(id) {
  selected = id;
  const record = await api("GET", `/v1/events/${encodeURIComponent(id)}`);
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  statusBadge($("detail-status"), record.deliveryStatus);
  $("detail-body").textContent = JSON.stringify(record.event, null, 2);
  const body = $("attempts").tBodies[0];
  body.replaceChildren();
  for (const a of record.attempts) {
    const row = body.insertRow();
    row.className = "attempt";
    cell(row, a.attempt);
    cell(row, a.startedAt);
    cell(row, a.statusCode == null ? "—" : a.statusCode);
    cell(row, `${a.durationMs} ms`);
    cell(row, a.error ? `${a.errorClass || ""}: ${a.error}` : "", "error");
    cell(row, a.responseBody || "");
    cell(row, a.endpointId || "", "mono");
  }
  for (const row of $("events").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  return record;
}

async function redeliver() {
  const id = selected;
  const before = (await showEvent(id)).attempts.length;
  await api("POST", `/v1/events/${encodeURIComponent(id)}/redeliver`);
  $("redeliver-result").textContent = "Queued; waiting for the new attempt…";
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (selected !== id) return;
    const record = await showEvent(id);
    if (record.attempts.length > before && record.deliveryStatus !== "pending") {
      $("redeliver-result").textContent = `New attempt: ${record.deliveryStatus}.`;
      loadEvents();
      return;
    }
  }
  $("redeliver-result").textContent = "No new attempt yet; refresh later.";
}

async function sendTest() {
  $("test-result").textContent = "Sending…";
  const outcome = await api("POST", "/v1/webhook/test");
  $("test-result").textContent = outcome.delivered
    ? `Delivered: HTTP ${outcome.statusCode} in ${outcome.durationMs} ms.`
    : `Failed (${outcome.errorClass}): ${outcome.error}`;
}

function svg(name, attributes) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
  return element;
}

async function loadStats() {
  const stats = await api("GET", "/v1/stats/deliveries");
  const chart = $("chart");
  chart.replaceChildren();
  const [width, height] = [600, 160];
  const step = width / stats.buckets.length;
  const slowest = Math.max(1, ...stats.buckets.map((b) => b.avgDurationMs || 0));
  let attempts = 0, succeeded = 0, accepted = 0;
  const line = [];
  stats.buckets.forEach((b, i) => {
    attempts += b.attempts;
    succeeded += b.succeeded;
    accepted += b.accepted;
    if (b.attempts === 0) return;
    const rate = b.succeeded / b.attempts;
    const bar = height * rate;
    chart.append(svg("rect", { x: i * step + 1, y: height - bar, width: step - 2, height: bar, class: "ok" }));
    chart.append(svg("rect", { x: i * step + 1, y: 0, width: step - 2, height: height - bar, class: "bad" }));
    line.push(`${i * step + step / 2},${height - (height * (b.avgDurationMs || 0)) / slowest}`);
  });
  if (line.length > 1) chart.append(svg("polyline", { points: line.join(" "), class: "latency" }));
  const pace = `${accepted} events made, ${succeeded} delivered in the last hour; delivery lag now ${stats.outboxLagSeconds.toFixed(1)} s.`;
  $("chart-summary").textContent = attempts === 0
    ? `No attempts in the last hour. ${pace}`
    : `${attempts} attempts, ${((100 * succeeded) / attempts).toFixed(1)} % succeeded; slowest minute's mean ${slowest} ms. ${pace}`;
}

function report(error) {
  if (error.message !== "unauthorized") $("login-error").textContent = error.message;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("api-key").value.trim());
    $("api-key").value = "";
    start().catch(report);
  });
  $("logout").addEventListener("click", () => logout());
  $("refresh").addEventListener("click", () => Promise.all([loadEvents(), loadEndpoints(), loadStats()]).catch(report));
  $("redeliver").addEventListener("click", () => redeliver().catch(report));
  $("send-test").addEventListener("click", () => sendTest().catch((e) => { $("test-result").textContent = e.message; }));
  if (sessionStorage.getItem(KEY)) start().catch(report);
  document.body.dataset.ready = "true";
});
