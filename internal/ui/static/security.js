// Security: open alerts, the gateway's blocks by rule and client, refused
// handshakes by reason, revocations, and when certificates expire.
import { el, fill, svg, get, table, dateTime, status } from "./dom.js";

export function initSecurity() {
  document.getElementById("security-form").addEventListener("change", showSecurity);
}

export async function showSecurity() {
  const win = document.getElementById("security-form").window.value;
  status("security-status", "loading…");
  let v;
  try { v = await get("/api/security", { window: win }); } catch (e) { status("security-status", e.message, true); return; }
  status("security-status", v.truncated ? "more records than one query answers: counts are of the newest" : "");
  const counts = (title, id, rows, what) => el("div", { class: "card", id }, el("h2", {}, title),
    rows.length ? table([what, "Count"], rows.map((r) => el("tr", {}, el("td", {}, r.name || "—"), el("td", {}, String(r.count)))), title)
      : el("p", { class: "muted" }, "none in the window"));
  const rev = v.ca.revocations || {};
  const revoked = [...(rev.ids || []).map((x) => ["identity", x]), ...(rev.serials || []).map((x) => ["serial", x])];
  fill(document.getElementById("security-out"),
    el("div", { class: "card wide", id: "sec-alerts" }, el("h2", {}, `Alerts (${v.alerts.length})`),
      v.alerts.length ? table(["Time", "Severity", "Alert", "Detail"], v.alerts.map((a) => el("tr", {},
        el("td", {}, dateTime(a.time)), el("td", {}, a.severity || ""),
        el("td", {}, a.finding_info ? a.finding_info.title : ""), el("td", {}, a.finding_info ? a.finding_info.desc || "" : a.message || ""))), "Alerts")
        : el("p", { class: "muted" }, "No alert in the window.")),
    counts(`WAF and gateway blocks by rule (${v.blocks})`, "sec-waf-rule", v.waf_by_rule, "Rule"),
    counts("Blocks by client", "sec-waf-client", v.waf_by_client, "Client"),
    counts("Refused handshakes by reason", "sec-handshakes", v.handshakes, "Reason"),
    el("div", { class: "card", id: "sec-revocations" }, el("h2", {}, `Revocations (${revoked.length})`),
      revoked.length ? table(["Kind", "Revoked"], revoked.map(([k, x]) => el("tr", {}, el("td", {}, k), el("td", {}, x))), "Revocations")
        : el("p", { class: "muted" }, "Nothing is revoked.")),
    el("div", { class: "card wide", id: "sec-certs" }, el("h2", {}, "Certificate and CA expiry"), timeline(v)));
}

// timeline draws one bar per certificate from now to its expiry, soonest
// first: the CA's roots and signing certificate, service SVIDs, admins.
function timeline(v) {
  const now = Date.now();
  const items = [];
  for (const r of v.ca.roots || []) items.push({ what: "root " + r.serial.slice(0, 10), end: Date.parse(r.not_after) });
  if (v.ca.signing && v.ca.signing.not_after) items.push({ what: "CA signing " + v.ca.signing.serial.slice(0, 10), end: Date.parse(v.ca.signing.not_after) });
  const svids = new Map();
  for (const c of v.certs) {
    if (c.kind === "svid") { const k = c.name; if (!svids.has(k) || svids.get(k).end < Date.parse(c.expires)) svids.set(k, { what: "svc " + c.name, end: Date.parse(c.expires) }); }
    else items.push({ what: "admin " + c.name, end: Date.parse(c.expires) });
  }
  items.push(...svids.values());
  items.sort((a, b) => a.end - b.end);
  if (!items.length) return el("p", { class: "muted" }, "No certificate known.");
  // Time to expiry on a logarithmic scale, so an SVID's hour and a root's
  // decade both show.
  const hour = 3600000, day = 24 * hour;
  const max = Math.max(...items.map((i) => i.end));
  const W = 900, row = 20, left = 200, H = items.length * row + 40;
  const span = Math.log1p(Math.max(hour, max - now) / hour);
  const x = (t) => left + (W - left - 160) * Math.max(0, Math.min(1, Math.log1p(Math.max(0, t - now) / hour) / span));
  const g = svg("svg", { class: "timeline", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "Certificate expiry timeline" });
  items.forEach((it, i) => {
    const y = 10 + i * row;
    const soon = it.end - now < 7 * day && it.what.startsWith("root") || it.end - now < day;
    g.append(svg("text", { x: 4, y: y + 13 }, it.what),
      svg("rect", { class: "bar" + (soon ? " soon" : ""), x: left, y: y + 3, width: Math.max(2, x(it.end) - left), height: row - 8, rx: 3 }),
      svg("text", { x: Math.min(W - 150, x(it.end) + 6), y: y + 13 }, new Date(it.end).toLocaleDateString() + " " + new Date(it.end).toLocaleTimeString(undefined, { hour12: false })));
  });
  g.append(svg("line", { class: "now", x1: left, x2: left, y1: 0, y2: H - 20 }));
  for (const [name, d] of [["now", 0], ["1 h", hour], ["1 day", day], ["30 days", 30 * day], ["1 year", 365 * day], ["10 years", 3650 * day]]) {
    if (now + d > max * 1.05 && d) continue;
    g.append(svg("text", { x: x(now + d), y: H - 4, "text-anchor": "middle", class: "tick" }, name));
  }
  return el("div", {}, g, table(["Certificate", "Expires"], items.map((it) => el("tr", {}, el("td", {}, it.what), el("td", {}, dateTime(it.end)))), "Certificates by expiry"));
}
