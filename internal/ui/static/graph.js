// The service graph: the window's edges summed by the control plane, laid
// out by the dashboard's backend, drawn here as SVG, grown live from the
// follow stream.
import { el, fill, svg, get, bytes, badge, recordRow, table, status } from "./dom.js";

const NODE_W = 150, NODE_H = 40;
const ORDER = { deny: 0, audit: 1, allow: 2, "": 3 };
const st = {
  data: null, nodes: new Map(), edges: new Map(), t: { x: 0, y: 0, k: 1 },
  weight: "bytes", max: 1, live: null, reloadTimer: null, listTimer: null, refreshTimer: null, selected: null, updates: 0,
};

function form() { return document.getElementById("graph-form"); }
function root() { return document.getElementById("graph"); }

export function initGraph() {
  const f = form();
  f.addEventListener("change", (ev) => {
    if (ev.target.name === "weight") { st.weight = ev.target.value; widths(); renderList(); return; }
    load();
  });
  f.addEventListener("submit", (ev) => ev.preventDefault());
  f.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => zoomBy(b.dataset.zoom)));
  document.getElementById("edge-filter").addEventListener("input", renderList);
  panZoom(root());
}

export function showGraph() { if (!st.data) load(); else startLive(); }
export function hideGraph() { stopLive(); }

export async function load() {
  const f = form();
  status("graph-status", "loading…");
  let data;
  try {
    data = await get("/api/graph", { window: f.window.value, group: f.group.value });
  } catch (e) {
    status("graph-status", e.message, true);
    return;
  }
  st.data = data;
  groupOptions(data);
  render();
  status("graph-status", summary());
  startLive();
  clearTimeout(st.refreshTimer);
  // The window slides: sum it afresh now and then.
  st.refreshTimer = setTimeout(() => { if (!document.getElementById("view-graph").hidden) load(); }, 60000);
}

function summary() {
  const d = st.data;
  return `${d.nodes.length} services, ${d.edges.length} edges` + (d.truncated ? " (the heaviest only)" : "") + (d.missing && d.missing.length ? ` (partial: no records from ${[...new Set(d.missing)].join(", ")})` : "") + `, since ${new Date(d.since).toLocaleTimeString(undefined, { hour12: false })}`;
}

function groupOptions(d) {
  const sel = form().group;
  const want = ["node", ...(d.label_keys || []).map((k) => "label:" + k)];
  const have = [...sel.options].map((o) => o.value);
  if (want.join() === have.join()) return;
  const cur = sel.value;
  fill(sel, ...want.map((v) => el("option", { value: v, selected: v === cur }, v === "node" ? "node" : "label " + v.slice(6))));
}

function weightOf(e) { return st.weight === "flows" ? e.flows : e.bytes; }

function render() {
  const t0 = performance.now();
  const s = root();
  const d = st.data;
  st.nodes.clear();
  st.edges.clear();
  const defs = svg("defs", {}, ["allow", "deny", "audit"].map((v) =>
    svg("marker", { id: "arrow-" + v, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: v }))));
  const vp = svg("g", { id: "viewport" });
  const groups = svg("g", { class: "groups" });
  for (const g of d.groups) {
    groups.append(svg("g", { class: "group" },
      svg("rect", { x: g.x, y: g.y, width: g.w, height: g.h, rx: 10 }),
      svg("text", { x: g.x + 12, y: g.y + 20 }, g.name)));
  }
  for (const n of d.nodes) st.nodes.set(n.id, n);
  // One listener for all edges: a graph of ten thousand draws faster.
  const edges = svg("g", { class: "edges", id: "edges" });
  edges.addEventListener("click", (ev) => { const id = ev.target.dataset && ev.target.dataset.id; if (id) selectEdge(id); });
  edges.addEventListener("mouseover", (ev) => { const x = st.edges.get(ev.target.dataset && ev.target.dataset.id); if (x) status("graph-status", label(x.e)); });
  edges.addEventListener("mouseout", () => status("graph-status", summary()));
  for (const e of d.edges) addEdge(e, edges);
  const nodes = svg("g", { class: "nodes" });
  for (const n of d.nodes) nodes.append(nodeEl(n));
  vp.append(groups, edges, nodes);
  fill(s, defs, vp);
  widths();
  fit();
  renderList();
  s.dataset.edges = String(d.edges.length);
  s.dataset.renderMs = (performance.now() - t0).toFixed(2);
  s.dataset.readyAt = performance.now().toFixed(1);
  s.dataset.ready = "1";
  // Two frames later the graph has been laid out and painted.
  requestAnimationFrame(() => requestAnimationFrame(() => { s.dataset.paintedAt = performance.now().toFixed(1); }));
}

function nodeEl(n) {
  const cls = "node " + (n.kind === "world" ? "world" : "service") + (n.registered || n.kind === "world" ? "" : " unregistered");
  const label = n.kind === "world" ? "the world" : n.id;
  const where = n.kind === "world" ? "" : n.registered ? `, node ${n.node}` : ", not registered";
  const g = svg("g", {
    class: cls, tabindex: 0, role: "button", "data-id": n.id, "aria-label": `service ${label}${where}`,
    transform: `translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`,
  }, svg("rect", { width: NODE_W, height: NODE_H, rx: 8 }),
  svg("text", { x: NODE_W / 2, y: NODE_H / 2 + 4, "text-anchor": "middle" }, short(label, 20)));
  const open = () => { if (n.kind !== "world") selectService(n.id); };
  g.addEventListener("click", open);
  g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
  return g;
}

function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

function addEdge(e, parent) {
  const a = st.nodes.get(e.src), b = st.nodes.get(e.dst);
  if (!a || !b || a === b) return false;
  const p = svg("path", { class: "edge " + e.verdict, d: geometry(a, b, e.verdict), "data-id": e.id, "marker-end": `url(#arrow-${e.verdict || "allow"})` });
  (parent || document.getElementById("edges")).append(p);
  st.edges.set(e.id, { e, p });
  return true;
}

function label(e) { return `${e.src} → ${e.dst}: ${e.verdict}, ${e.flows} connections, ${bytes(e.bytes)}`; }

// geometry is a curve from a to b that bends by the verdict, so the
// verdicts of one pair and the two directions never overlap, ending on
// the boxes' borders.
function geometry(a, b, verdict) {
  const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
  const off = 18 + 24 * (ORDER[verdict] ?? 3);
  const cx = (a.x + b.x) / 2 - (dy / len) * off, cy = (a.y + b.y) / 2 + (dx / len) * off;
  const [sx, sy] = border(a, cx, cy), [ex, ey] = border(b, cx, cy);
  return `M${sx.toFixed(1)},${sy.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${ex.toFixed(1)},${ey.toFixed(1)}`;
}

function border(n, tx, ty) {
  const dx = tx - n.x, dy = ty - n.y;
  const t = Math.min((NODE_W / 2 + 2) / Math.abs(dx || 1e-9), (NODE_H / 2 + 2) / Math.abs(dy || 1e-9));
  return [n.x + dx * Math.min(t, 1), n.y + dy * Math.min(t, 1)];
}

function widths() {
  let max = 1;
  for (const { e } of st.edges.values()) max = Math.max(max, weightOf(e));
  st.max = max;
  for (const { e, p } of st.edges.values()) p.setAttribute("stroke-width", width(e));
}

function width(e) { return (1.5 + 8 * Math.sqrt(weightOf(e) / st.max)).toFixed(2); }

function renderList() {
  const list = document.getElementById("edge-list");
  const q = document.getElementById("edge-filter").value.trim().toLowerCase();
  const all = [...st.edges.values()].map((x) => x.e)
    .filter((e) => !q || e.src.toLowerCase().includes(q) || e.dst.toLowerCase().includes(q))
    .sort((x, y) => (ORDER[x.verdict] - ORDER[y.verdict]) || (weightOf(y) - weightOf(x)) || x.id.localeCompare(y.id));
  const shown = all.slice(0, 200);
  fill(list, ...shown.map((e) => el("li", {}, el("button", {
    type: "button", "data-id": e.id, onclick: () => selectEdge(e.id),
  }, badge(e.verdict), " ", `${e.src} → ${e.dst}`, el("span", { class: "muted" }, ` ${e.flows} conn, ${bytes(e.bytes)}`)))));
  if (all.length > shown.length) list.append(el("li", { class: "muted" }, `and ${all.length - shown.length} more: filter to find them`));
}

function highlight(ids) {
  for (const { p } of st.edges.values()) p.classList.toggle("selected", ids.has(p.dataset.id));
  root().querySelectorAll(".node").forEach((n) => n.classList.toggle("selected", ids.has(n.dataset.id)));
}

async function selectEdge(id) {
  const x = st.edges.get(id);
  if (!x) return;
  const e = x.e;
  st.selected = id;
  highlight(new Set([id]));
  const detail = document.getElementById("detail");
  fill(detail, el("h2", {}, `${e.src} → ${e.dst} `, badge(e.verdict)), el("p", { class: "muted" }, "loading…"));
  let d;
  try {
    d = await get("/api/edge", { src: e.src, dst: e.dst, verdict: e.verdict, window: form().window.value });
  } catch (err) {
    fill(detail, el("h2", {}, `${e.src} → ${e.dst}`), el("p", { class: "banner error" }, err.message));
    return;
  }
  if (st.selected !== id) return;
  fill(detail,
    el("h2", { id: "edge-title" }, `${e.src} → ${e.dst} `, badge(e.verdict)),
    el("dl", { class: "kv" },
      el("dt", {}, "Connections"), el("dd", {}, String(e.flows)),
      el("dt", {}, "Bytes"), el("dd", {}, bytes(e.bytes)),
      el("dt", {}, "Deciding rule"), el("dd", { id: "edge-rule" }, d.rule || "—"),
      el("dt", {}, "Port"), el("dd", {}, d.port ? String(d.port) : "—")),
    el("h3", {}, "Why: policy explain"),
    d.explain ? el("pre", { id: "edge-explain" }, d.explain.text) : el("p", { class: "muted" }, "No record in the window to explain."),
    el("h3", {}, "Recent flows"),
    table(["Time", "Event", "Source", "Destination", "Verdict", "Rule", "Bytes", "Reason"], d.records.map(recordRow), "Recent flows of this edge"));
}

async function selectService(name) {
  st.selected = "svc:" + name;
  const ids = new Set([name]);
  for (const { e } of st.edges.values()) if (e.src === name || e.dst === name) ids.add(e.id);
  highlight(ids);
  const detail = document.getElementById("detail");
  fill(detail, el("h2", {}, name), el("p", { class: "muted" }, "loading…"));
  let d;
  try { d = await get("/api/service", { name }); } catch (err) {
    fill(detail, el("h2", {}, name), el("p", { class: "banner error" }, err.message));
    return;
  }
  const l = d.listing;
  const rules = (rs) => rs.length ? table(["Rule", "From", "To", "Ports", "Mode"], rs.map((r) => el("tr", {},
    el("td", {}, r.name), el("td", {}, [...(r.from || []), ...(r.from_plaintext || []).map((p) => "plaintext " + p)].join(", ")),
    el("td", {}, r.to), el("td", {}, (r.ports || []).join(", ")), el("td", {}, r.mode)))) : el("p", { class: "muted" }, "none");
  fill(detail,
    el("h2", { id: "service-title" }, d.name),
    el("dl", { class: "kv" },
      el("dt", {}, "Identity"), el("dd", {}, d.id),
      el("dt", {}, "Node"), el("dd", {}, l ? l.node : "not registered"),
      el("dt", {}, "App port"), el("dd", {}, l ? String(l.port) : "—"),
      el("dt", {}, "Peer mode"), el("dd", {}, d.peer_mode),
      el("dt", {}, "SVID expiry"), el("dd", { id: "service-svid" }, d.svids.length ? d.svids.map((c) => `${new Date(c.expires).toLocaleString(undefined, { hour12: false })} (serial ${c.serial.slice(0, 12)}…, node ${c.node})`).join("; ") : "no live SVID"),
      el("dt", {}, "Upstreams"), el("dd", {}, l && l.upstreams ? l.upstreams.map((u) => `${u.service} on 127.0.0.1:${u.local_port}`).join(", ") : "none"),
      el("dt", {}, "Labels"), el("dd", {}, l && l.labels ? Object.entries(l.labels).map(([k, v]) => `${k}=${v}`).join(", ") : "none"),
      el("dt", {}, "Listeners"), el("dd", {}, l && l.health ? l.health.map((h) => `${h.kind} ${h.addr} ${h.ok ? "ok" : "failing: " + (h.error || "")}`).join("; ") : "not reported")),
    d.policy_note ? el("p", { class: "banner error" }, d.policy_note) : null,
    el("h3", {}, "Inbound rules"), rules(d.inbound),
    el("h3", {}, "Outbound rules"), rules(d.outbound));
}

// Live updates: the backend sums the records stored since the graph's
// Until per edge and sends the growth once a second.
function startLive() {
  if (st.live || !st.data) return;
  const es = new EventSource("/api/graph/live?since=" + encodeURIComponent(st.data.until));
  st.live = es;
  es.addEventListener("delta", (ev) => apply(JSON.parse(ev.data)));
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) { st.live = null; status("graph-status", "live updates stopped; reloading soon", true); reloadSoon(); }
  });
}

function stopLive() { if (st.live) { st.live.close(); st.live = null; } }

function apply(delta) {
  if (!delta.edges || !delta.edges.length) return;
  const t0 = performance.now();
  let added = false, rescale = false;
  for (const inc of delta.edges) {
    const x = st.edges.get(inc.id);
    if (x) {
      x.e.flows += inc.flows;
      x.e.bytes += inc.bytes;
      if (weightOf(x.e) > st.max * 1.25) rescale = true;
      else x.p.setAttribute("stroke-width", width(x.e));
      continue;
    }
    if (!st.nodes.has(inc.src) || !st.nodes.has(inc.dst)) { reloadSoon(); continue; }
    const e = { ...inc };
    st.data.edges.push(e);
    if (addEdge(e)) added = true;
    rescale = true;
  }
  if (rescale) widths();
  if (added) { root().dataset.edges = String(st.edges.size); }
  listSoon();
  st.updates++;
  root().dataset.applyMs = (performance.now() - t0).toFixed(2);
  root().dataset.updates = String(st.updates);
  status("graph-status", summary() + " · live");
}

// listSoon redraws the edge list at most every few seconds: sorting ten
// thousand edges on every delta would cost more than the delta.
function listSoon() {
  if (st.listTimer) return;
  st.listTimer = setTimeout(() => { st.listTimer = null; renderList(); }, 3000);
}

function reloadSoon() {
  if (st.reloadTimer) return;
  st.reloadTimer = setTimeout(() => { st.reloadTimer = null; stopLive(); load(); }, 2000);
}

// Pan and zoom: drag the background, the wheel, the buttons, or the keys
// (arrows, + and -, 0 to fit) while the graph has focus.
function apply_t() {
  const vp = document.getElementById("viewport");
  if (vp) vp.setAttribute("transform", `translate(${st.t.x.toFixed(1)},${st.t.y.toFixed(1)}) scale(${st.t.k.toFixed(4)})`);
}

function fit() {
  const s = root(), d = st.data;
  const w = s.clientWidth || 800, h = s.clientHeight || 600;
  const k = Math.min(1.5, w / (d.width || 1), h / (d.height || 1));
  st.t = { k, x: (w - d.width * k) / 2, y: (h - d.height * k) / 2 };
  apply_t();
}

function zoomBy(how, cx, cy) {
  if (how === "fit") return fit();
  const s = root();
  cx = cx ?? s.clientWidth / 2; cy = cy ?? s.clientHeight / 2;
  const f = how === "in" ? 1.25 : 0.8;
  const k = Math.min(8, Math.max(0.02, st.t.k * f));
  st.t.x = cx - (cx - st.t.x) * (k / st.t.k);
  st.t.y = cy - (cy - st.t.y) * (k / st.t.k);
  st.t.k = k;
  apply_t();
}

function panZoom(s) {
  let drag = null;
  s.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = s.getBoundingClientRect();
    zoomBy(ev.deltaY < 0 ? "in" : "out", ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  s.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".node") || ev.target.classList.contains("edge")) return;
    drag = { x: ev.clientX, y: ev.clientY, tx: st.t.x, ty: st.t.y };
    s.setPointerCapture(ev.pointerId);
    s.classList.add("dragging");
  });
  s.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    st.t.x = drag.tx + ev.clientX - drag.x;
    st.t.y = drag.ty + ev.clientY - drag.y;
    apply_t();
  });
  const end = () => { drag = null; s.classList.remove("dragging"); };
  s.addEventListener("pointerup", end);
  s.addEventListener("pointercancel", end);
  s.addEventListener("keydown", (ev) => {
    if (ev.target !== s) return;
    const step = 60;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[ev.key]) { st.t.x += moves[ev.key][0]; st.t.y += moves[ev.key][1]; apply_t(); ev.preventDefault(); }
    else if (ev.key === "+" || ev.key === "=") { zoomBy("in"); ev.preventDefault(); }
    else if (ev.key === "-") { zoomBy("out"); ev.preventDefault(); }
    else if (ev.key === "0") { fit(); ev.preventDefault(); }
  });
}
