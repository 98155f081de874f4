// The dashboard's entry: the session, the views and the router. Each view
// loads when shown; live streams run only while their view is shown.
import { el, fill, get, post, session, recordRow, status, query, dateTime } from "./dom.js";
import { initGraph, showGraph, hideGraph } from "./graph.js";
import { initPolicy, showPolicy } from "./policy.js";
import { initSecurity, showSecurity } from "./security.js";

const views = {
  graph: { show: showGraph, hide: hideGraph },
  flows: { show: showFlows, hide: stopFollow },
  policy: { show: showPolicy },
  security: { show: showSecurity },
  audit: { show: showAudit },
};
let current = null;

async function start() {
  try {
    const s = await get("/api/session");
    Object.assign(session, { csrf: s.csrf, canApply: s.can_apply, admin: s.admin, role: s.role });
    document.getElementById("who").textContent = `${s.admin} (${s.role}) · control plane ${s.server}`;
  } catch (e) {
    const p = document.getElementById("signin");
    p.textContent = e.status === 401 ? "Not signed in: open the address \"moat ui\" printed (it works once)." : e.message;
    p.hidden = false;
    return;
  }
  initGraph();
  initFlows();
  initPolicy();
  initSecurity();
  initAudit();
  window.addEventListener("hashchange", route);
  route();
}

function route() {
  const name = (location.hash || "#graph").slice(1);
  const v = views[name] ? name : "graph";
  if (current && current !== v && views[current].hide) views[current].hide();
  current = v;
  for (const k of Object.keys(views)) document.getElementById("view-" + k).hidden = k !== v;
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.view === v) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  views[v].show();
}

// Flows: "moat flows" with its filters, and --follow as a live tail.
let follow = null;
const maxRows = 500;

function initFlows() {
  const f = document.getElementById("flows-form");
  f.addEventListener("submit", (ev) => { ev.preventDefault(); showFlows(); });
}

function flowParams() {
  const f = document.getElementById("flows-form");
  return { from: f.from.value.trim(), to: f.to.value.trim(), verdict: f.verdict.value, rule: f.rule.value.trim(), window: f.window.value };
}

function cli(p, live) {
  let c = "moat flows";
  for (const k of ["from", "to", "verdict", "rule"]) if (p[k]) c += ` --${k} ${shell(p[k])}`;
  if (p.window) c += ` --since ${p.window}`;
  if (live) c += " --follow";
  return c;
}

function shell(s) { return /^[\w.:\/@-]+$/.test(s) ? s : "'" + s.replaceAll("'", "'\\''") + "'"; }

async function showFlows() {
  stopFollow();
  const p = flowParams();
  const live = document.getElementById("flows-form").follow.checked;
  document.getElementById("flows-cli").textContent = cli(p, live);
  const body = document.querySelector("#flows-table tbody");
  fill(body);
  if (!live) {
    status("flows-status", "loading…");
    try {
      const r = await get("/api/flows", { ...p, limit: 200 });
      body.append(...r.records.slice().reverse().map(recordRow));
      status("flows-status", `${r.records.length} records` + (r.truncated ? " (the newest only)" : ""));
    } catch (e) { status("flows-status", e.message, true); }
    return;
  }
  status("flows-status", "following…");
  const es = new EventSource("/api/flows/follow?" + query(p));
  follow = es;
  let n = 0;
  es.addEventListener("record", (ev) => {
    const fr = JSON.parse(ev.data);
    const row = recordRow(fr.record);
    row.classList.add("new");
    body.prepend(row);
    while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
    n++;
    status("flows-status", `live: ${n} records` + (fr.dropped ? `, ${fr.dropped} missed (too many to show)` : ""));
  });
  es.addEventListener("heartbeat", () => { if (!n) status("flows-status", "live: waiting for records"); });
  es.addEventListener("error", (ev) => {
    if (ev.data) status("flows-status", JSON.parse(ev.data).error, true);
    else if (es.readyState === EventSource.CLOSED) status("flows-status", "the live tail stopped", true);
  });
}

function stopFollow() { if (follow) { follow.close(); follow = null; } }

// Audit: the log newest first, with the last verification against the
// latest signed checkpoint.
let auditBefore = null;

function initAudit() {
  document.getElementById("audit-verify").addEventListener("click", verifyAudit);
  document.getElementById("audit-older").addEventListener("click", () => showAudit("older"));
  document.getElementById("audit-newest").addEventListener("click", () => { auditBefore = null; showAudit(); });
}

let lastAudit = null;

async function showAudit(page) {
  const params = {};
  if (page === "older" && lastAudit && lastAudit.entries.length) {
    auditBefore = lastAudit.entries[lastAudit.entries.length - 1].index;
  }
  if (auditBefore !== null) params.before = auditBefore;
  let v;
  try { v = await get("/api/audit", params); } catch (e) {
    auditBanner(null, e.message);
    return;
  }
  lastAudit = v;
  if (!v.status && v.verifiable && page === undefined) return verifyAudit();
  renderAudit(v);
}

function renderAudit(v) {
  auditBanner(v.status, v.verifiable ? "" : "This dashboard has no verifier key pinned: the log is shown unverified.");
  const covered = v.status && v.status.ok ? v.status.size : -1;
  const body = document.querySelector("#audit-table tbody");
  fill(body, ...v.entries.map((x) => {
    const e = x.entry || {};
    const inCp = x.index < covered;
    return el("tr", { "data-index": x.index },
      el("td", {}, String(x.index)), el("td", {}, dateTime(e.time)), el("td", {}, e.actor || "—"),
      el("td", {}, e.role || "—"), el("td", {}, e.action || "—"), el("td", {}, e.target || "—"),
      el("td", {}, e.result || "—"), el("td", { class: "account" }, x.account || "—"),
      el("td", {}, covered < 0 ? "not verified" : inCp ? "✓ verified" : "after the checkpoint"));
  }));
  document.getElementById("audit-older").disabled = !v.entries.length || v.entries[v.entries.length - 1].index === 0;
}

function auditBanner(s, note) {
  const b = document.getElementById("audit-status");
  b.className = "banner";
  if (s && s.ok) {
    b.classList.add("ok");
    b.textContent = `✓ Verified ${dateTime(s.at)}: entries 0–${s.size - 1} recompute the tree of the latest signed checkpoint (${s.origin}, size ${s.size}, root ${s.root}), which extends every checkpoint this machine checked before.`;
  } else if (s) {
    b.classList.add("error");
    b.textContent = `✗ Verification FAILED ${dateTime(s.at)}: ${s.error}`;
  } else {
    if (note) b.classList.add("error");
    b.textContent = note || "Not verified yet.";
  }
}

async function verifyAudit() {
  const b = document.getElementById("audit-status");
  b.className = "banner";
  b.textContent = "verifying…";
  let failed = "";
  try {
    await post("/api/audit/verify", {});
  } catch (e) {
    failed = e.message;
  }
  try {
    const v = await get("/api/audit", auditBefore !== null ? { before: auditBefore } : {});
    lastAudit = v;
    renderAudit(v);
  } catch (e) {
    failed = failed || e.message;
  }
  if (failed) auditBanner(null, failed);
}

start();
