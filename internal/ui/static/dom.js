// Helpers shared by the views. Everything shown is set as text, never as
// markup: flow records carry what strangers sent (paths, headers).

export const session = { csrf: "", canApply: false, admin: "", role: "" };

// el builds an element: el("td", {class: "x"}, "text", child, ...).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ApiError is a failed call, with the message the backend gave.
export class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function answer(r) {
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || r.statusText);
  return body;
}

export async function get(path, params) {
  const q = params ? "?" + new URLSearchParams(clean(params)).toString() : "";
  return answer(await fetch(path + q, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}

export async function post(path, body) {
  return answer(await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-Moat-CSRF": session.csrf },
    body: JSON.stringify(body),
  }));
}

function clean(params) {
  const out = {};
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) out[k] = v;
  return out;
}

export function query(params) { return new URLSearchParams(clean(params)).toString(); }

export function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + u[i];
}

export function time(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function dateTime(v) {
  const d = new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString(undefined, { hour12: false });
}

// side names end e of record r, as the CLI does: by its service, SPIFFE
// ID or name, else as the identity a refused peer claimed, which did not
// verify ("claimed: ID", flow.ShownClaim), else by its address.
export function side(r, e) {
  if (!e) return "?";
  if (e.svc_name) return e.svc_name;
  if (e.uid) return e.uid;
  if (e.name) return e.name;
  const claimed = r.unmapped && r.unmapped.claimed;
  const outbound = r.connection_info && r.connection_info.direction_id === 2;
  if (claimed && e === (outbound ? r.dst_endpoint : r.src_endpoint)) return "claimed: " + claimed;
  return e.port ? e.ip + ":" + e.port : (e.ip || "?");
}

export function verdictOf(r) {
  if (r.unmapped && r.unmapped.kind === "handshake") return "deny";
  return (r.unmapped && r.unmapped.verdict) || "";
}

export function badge(v) { return el("span", { class: "verdict " + v }, v || "—"); }

export function ruleOf(r) {
  if (r.firewall_rule) return r.firewall_rule.name || r.firewall_rule.uid || "";
  if (r.finding_info && r.finding_info.analytic) return r.finding_info.analytic.name || "";
  if (r.unmapped && r.unmapped.rules && r.unmapped.rules.length) return r.unmapped.rules[0];
  return "";
}

// recordRow renders one flow record as a table row.
export function recordRow(r) {
  const dst = side(r, r.dst_endpoint) + (r.dst_endpoint && r.dst_endpoint.svc_name && r.dst_endpoint.port ? ":" + r.dst_endpoint.port : "");
  let what = r.class_uid === 4001 ? (ACTIVITY[r.activity_id] || r.activity_name || "network") : (r.activity_name || r.class_name || "");
  if (r.connection_info && r.connection_info.direction_id) what += r.connection_info.direction_id === 1 ? " (in)" : " (out)";
  if (r.http_request) {
    const u = r.http_request.url || {};
    what = (r.http_request.http_method || "") + " " + (u.path || "") + (u.query_string ? "?" + u.query_string : "");
  }
  const m = r.unmapped || {};
  return el("tr", { "data-uid": r.metadata && r.metadata.uid, "data-time": r.time },
    el("td", {}, time(r.time)),
    el("td", {}, what.trim() || String(r.class_uid)),
    el("td", {}, side(r, r.src_endpoint)),
    el("td", {}, dst),
    el("td", {}, badge(verdictOf(r))),
    el("td", {}, ruleOf(r)),
    el("td", {}, r.traffic ? bytes(r.traffic.bytes) : ""),
    el("td", {}, m.reason_code || m.kind || ""));
}

// fill replaces parent's children, leaving out the absent ones.
export function fill(parent, ...kids) {
  parent.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}

const ACTIVITY = { 1: "open", 2: "close", 3: "reset", 4: "fail", 5: "refuse", 6: "traffic" };

export function table(head, rows, caption) {
  return el("div", { class: "table-wrap" }, el("table", {},
    caption ? el("caption", { class: "sr" }, caption) : null,
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

export function status(id, text, isError) {
  const s = document.getElementById(id);
  if (!s) return;
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}
