// The verihook dashboard: plain JavaScript over the public API, no build step.
// The API key stays in this tab's sessionStorage. Everything shown from the server is
// written with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "verihook.apiKey";
let selected = null;
/** The cursors of the pages before the one shown (newest first), and the next one's. */
const pages = { before: [], current: null, next: null };
let live = null;

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
  stopLive();
}

/** A "Copy" button for `text`: the clipboard where the page may write it, else a selection. */
function copyButton(text) {
  const button = document.createElement("button");
  button.className = "copy";
  button.textContent = "Copy";
  button.title = `Copy ${text}`;
  button.dataset.copy = text;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    copyText(button.dataset.copy).then(
      () => { button.textContent = "Copied"; },
      () => { button.textContent = "Select and copy"; },
    );
  });
  return button;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch (_) { /* not allowed here: fall back to a selection */ }
  }
  const area = document.createElement("textarea");
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
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
    cell(row, e.default ? `${e.id} (default)` : e.id, "mono").append(" ", copyButton(e.id));
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
    const check = document.createElement("button");
    check.className = "check";
    check.textContent = "Check";
    check.addEventListener("click", () =>
      runCheck(e.id).catch((err) => { $("check-summary").textContent = err.message; }));
    cell(row, "").append(check);
  }
  const choice = $("filter-endpoint");
  const chosen = choice.value;
  choice.replaceChildren(new Option("any", ""));
  for (const e of list.data) choice.append(new Option(e.default ? `${e.id} (default)` : e.id, e.id));
  choice.value = chosen;
}

/** Runs the receiver check from the server against the endpoint, and shows its report. */
async function runCheck(endpointId) {
  $("check-panel").hidden = false;
  $("check-summary").textContent = "Checking…";
  $("check-summary").className = "status pending";
  $("check-report").tBodies[0].replaceChildren();
  const report = await api("POST", `/v1/endpoints/${encodeURIComponent(endpointId)}/check`);
  $("check-url").textContent = report.url;
  const body = $("check-report").tBodies[0];
  for (const c of report.checks) {
    const row = body.insertRow();
    row.className = "check-line";
    cell(row, c.verdict, `status verdict-${c.verdict}`);
    cell(row, c.name);
    cell(row, c.detail);
  }
  const warnings = report.warn === 1 ? "1 warning" : `${report.warn} warnings`;
  $("check-summary").textContent =
    `${report.passed ? "PASS" : "FAIL"}: ${report.pass} passed, ${report.fail} failed, ${warnings}`;
  $("check-summary").className = `status ${report.passed ? "delivered" : "failed"}`;
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

/** The listing's query: the filters, and the page's cursor. */
function eventsQuery() {
  const query = new URLSearchParams({ limit: "25" });
  const filters = {
    type: $("filter-type").value,
    deliveryStatus: $("filter-status").value,
    endpointId: $("filter-endpoint").value,
    customerId: $("filter-customer").value.trim(),
  };
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  if (pages.current) query.set("after", pages.current);
  return query;
}

let eventLoads = 0;

async function loadEvents() {
  // Only the latest listing asked for is shown: a filter changed while an earlier listing
  // was on its way must not be overwritten by it.
  const mine = ++eventLoads;
  const page = await api("GET", `/v1/events?${eventsQuery()}`);
  if (mine !== eventLoads) return;
  pages.next = page.hasMore ? page.nextCursor : null;
  $("page-older").disabled = !pages.next;
  $("page-newest").disabled = pages.before.length === 0;
  $("page-info").textContent = `page ${pages.before.length + 1}`;
  $("events-empty").hidden = page.data.length > 0;
  const body = $("events").tBodies[0];
  body.replaceChildren();
  for (const e of page.data) {
    const row = body.insertRow();
    row.className = "event";
    row.dataset.id = e.id;
    if (e.id === selected) row.classList.add("selected");
    cell(row, e.id, "mono").append(" ", copyButton(e.id));
    cell(row, e.type);
    cell(row, e.customerId);
    cell(row, e.occurredAt);
    statusBadge(cell(row, ""), e.deliveryStatus);
    row.addEventListener("click", () => showEvent(e.id));
  }
}

/** `jane.smith@example.com` → `j•••@example.com`: enough to tell customers apart. */
function maskEmail(email) {
  const at = email.indexOf("@");
  return at < 1 ? "•••" : `${email[0]}•••${email.slice(at)}`;
}

/** The body as sent, with email addresses masked unless asked for (personal data). */
function shownBody(event) {
  if ($("show-emails").checked || !event || !event.payload) return event;
  const payload = { ...event.payload };
  if (typeof payload.email === "string") payload.email = maskEmail(payload.email);
  return { ...event, payload };
}

let shownRecord = null;

function renderBody() {
  if (shownRecord) $("detail-body").textContent = JSON.stringify(shownBody(shownRecord.event), null, 2);
}

async function showEvent(id) {
  selected = id;
  const record = await api("GET", `/v1/events/${encodeURIComponent(id)}`);
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  statusBadge($("detail-status"), record.deliveryStatus);
  shownRecord = record;
  renderBody();
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
    cell(row, "").append(requestHeaders(record, a));
  }
  for (const row of $("events").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  return record;
}

/**
 * The headers the attempt was sent with, as the sender writes them (the signature is
 * derived from the secret: named, never shown).
 */
function requestHeaders(record, attempt) {
  const details = document.createElement("details");
  details.className = "request";
  const summary = document.createElement("summary");
  summary.textContent = "headers";
  const lines = [
    "Content-Type: application/json",
    `X-Webhook-Event-Id: ${record.event.metadata.eventId}`,
    `X-Webhook-Event-Type: ${record.event.type}`,
    `X-Webhook-Attempt: ${attempt.attempt}`,
    `X-Webhook-Sequence: ${record.sequence}`,
    `X-Webhook-Timestamp: ${Math.floor(Date.parse(attempt.startedAt) / 1000)}`,
    "X-Webhook-Signature: (HMAC-SHA256 of the timestamp and body; not shown)",
  ];
  const pre = document.createElement("pre");
  pre.textContent = lines.join("\n");
  details.append(summary, pre);
  return details;
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

/** Axes: success rate on the left, mean response time on the right, minutes below. */
function axes(chart, plot, slowest) {
  const { left, top, width, height } = plot;
  const label = (x, y, text, anchor) => {
    const t = svg("text", { x, y, "text-anchor": anchor });
    t.textContent = text;
    chart.append(t);
  };
  chart.append(svg("line", { x1: left, y1: top, x2: left, y2: top + height, class: "axis" }));
  chart.append(svg("line", { x1: left, y1: top + height, x2: left + width, y2: top + height, class: "axis" }));
  chart.append(svg("line", { x1: left + width, y1: top, x2: left + width, y2: top + height, class: "axis" }));
  for (const [fraction, text] of [[0, "0 %"], [0.5, "50 %"], [1, "100 %"]]) {
    label(left - 4, top + height - fraction * height + 4, text, "end");
  }
  label(left + width + 4, top + 8, `${slowest} ms`, "start");
  label(left + width + 4, top + height + 4, "0 ms", "start");
  for (const [fraction, text] of [[0, "−60 min"], [0.5, "−30 min"], [1, "now"]]) {
    label(left + fraction * width, top + height + 16, text, "middle");
  }
  label(8, top - 6, "success rate", "start");
  label(left + width + 48, top - 6, "mean response time", "end");
}

async function loadStats() {
  const stats = await api("GET", "/v1/stats/deliveries");
  const chart = $("chart");
  chart.replaceChildren();
  const plot = { left: 44, top: 16, width: 560, height: 150 };
  const [width, height] = [plot.width, plot.height];
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
    const x = plot.left + i * step;
    chart.append(svg("rect", { x: x + 1, y: plot.top + height - bar, width: step - 2, height: bar, class: "ok" }));
    chart.append(svg("rect", { x: x + 1, y: plot.top, width: step - 2, height: height - bar, class: "bad" }));
    line.push(`${x + step / 2},${plot.top + height - (height * (b.avgDurationMs || 0)) / slowest}`);
  });
  if (line.length > 1) chart.append(svg("polyline", { points: line.join(" "), class: "latency" }));
  axes(chart, plot, slowest);
  const pace = `${accepted} events made, ${succeeded} delivered in the last hour; delivery lag now ${stats.outboxLagSeconds.toFixed(1)} s.`;
  $("chart-summary").textContent = attempts === 0
    ? `No attempts in the last hour. ${pace}`
    : `${attempts} attempts, ${((100 * succeeded) / attempts).toFixed(1)} % succeeded; slowest minute's mean ${slowest} ms. ${pace}`;
}

/** Follows the event stream (fetch, not EventSource: the API key goes in a header). */
async function startLive() {
  const controller = new AbortController();
  live = controller;
  $("live-toggle").textContent = "Stop";
  $("live-status").textContent = "connecting…";
  const response = await fetch("/v1/events/stream", {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
    signal: controller.signal,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    stopLive();
    $("live-status").textContent = body.error ? body.error.message : `HTTP ${response.status}`;
    return;
  }
  $("live-status").textContent = "live";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) showLive(JSON.parse(data));
    }
  }
  if (live === controller) stopLive();
}

function showLive(message) {
  const event = JSON.parse(message.body);
  const item = document.createElement("li");
  item.dataset.id = event.metadata.eventId;
  item.textContent = `${event.metadata.occurredAt}  ${event.type}  ${event.metadata.eventId}  ${event.payload.customerId || ""}`;
  $("live").prepend(item);
}

function stopLive() {
  if (live) live.abort();
  live = null;
  $("live-toggle").textContent = "Start";
  $("live-status").textContent = "";
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
  $("show-emails").addEventListener("change", renderBody);
  $("send-test").addEventListener("click", () => sendTest().catch((e) => { $("test-result").textContent = e.message; }));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    Object.assign(pages, { before: [], current: null });
    loadEvents().catch(report);
  });
  $("filter-clear").addEventListener("click", () => {
    $("filters").reset();
    Object.assign(pages, { before: [], current: null });
    loadEvents().catch(report);
  });
  $("page-older").addEventListener("click", () => {
    pages.before.push(pages.current);
    pages.current = pages.next;
    loadEvents().catch(report);
  });
  $("page-newest").addEventListener("click", () => {
    Object.assign(pages, { before: [], current: null });
    loadEvents().catch(report);
  });
  $("live-toggle").addEventListener("click", () => {
    if (live) stopLive();
    else startLive().catch((e) => { if (e.name !== "AbortError") $("live-status").textContent = e.message; });
  });
  $("detail-copy").addEventListener("click", () => {
    copyText(selected).then(() => { $("detail-copy").textContent = "Copied"; }, () => {});
  });
  if (sessionStorage.getItem(KEY)) start().catch(report);
  document.body.dataset.ready = "true";
});
