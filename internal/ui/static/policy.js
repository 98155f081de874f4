// Policy: the intentions as a table; a pasted or loaded file compared
// with them, with the recent flows it would deny; apply after a
// confirmation (the control plane checks the role and audits the call).
import { el, fill, get, post, session, table, recordRow, badge, status, dateTime } from "./dom.js";

let current = null; // the applied policy, as /api/policy answers
let diffed = null;  // { yaml, base, changes } of the last diff shown

export function initPolicy() {
  document.getElementById("policy-form").addEventListener("submit", (ev) => { ev.preventDefault(); diff(); });
  document.getElementById("policy-file").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    if (f.size > 1 << 20) { status("policy-status", "the file is larger than 1 MiB", true); return; }
    document.getElementById("policy-yaml").value = await f.text();
    diff();
  });
  document.getElementById("policy-yaml").addEventListener("input", () => {
    document.getElementById("policy-apply").disabled = true;
  });
  document.getElementById("policy-apply").addEventListener("click", confirmApply);
  document.getElementById("apply-dialog").addEventListener("close", (ev) => {
    if (ev.target.returnValue === "apply") apply();
  });
}

export async function showPolicy() {
  let v;
  try { v = await get("/api/policy"); } catch (e) { status("policy-status", e.message, true); return; }
  current = v;
  const p = v.policy;
  document.getElementById("policy-meta").textContent = p.version
    ? `Version ${p.version}, applied ${dateTime(p.applied)} by ${p.by}. Mode ${v.mode}.` + (v.error ? ` (${v.error})` : "")
    : "No policy is applied: every connection is denied.";
  const body = document.querySelector("#policy-table tbody");
  fill(body, ...v.rules.map((r) => el("tr", { "data-rule": r.name },
    el("td", {}, r.name),
    el("td", {}, [...(r.from || []), ...(r.from_plaintext || []).map((x) => "plaintext " + x)].join(", ")),
    el("td", {}, r.to), el("td", {}, (r.ports || []).join(", ")), el("td", {}, r.mode))));
  const ta = document.getElementById("policy-yaml");
  if (!ta.value) ta.value = p.yaml || "default: deny\nrules: []\n";
}

async function diff() {
  const yaml = document.getElementById("policy-yaml").value;
  const out = document.getElementById("policy-diff-out");
  document.getElementById("policy-apply").disabled = true;
  status("policy-status", "comparing…");
  let d;
  try { d = await post("/api/policy/diff", { yaml }); } catch (e) {
    status("policy-status", e.message, true);
    return;
  }
  if (d.error) {
    status("policy-status", "");
    fill(out, el("p", { class: "banner error", id: "policy-error" }, "This policy does not parse: " + d.error));
    return;
  }
  status("policy-status", "");
  diffed = { yaml, base: d.base, changes: d.changes };
  const c = d.changes;
  const lines = [];
  if (c.mode_change) lines.push(el("li", { class: "diff-chg" }, "mode: " + c.mode_change));
  for (const r of c.added || []) lines.push(el("li", { class: "diff-add" }, "+ rule " + r));
  for (const r of c.removed || []) lines.push(el("li", { class: "diff-del" }, "− rule " + r));
  for (const r of c.changed || []) lines.push(el("li", { class: "diff-chg" }, "~ rule " + r));
  for (const s of c.peer_modes || []) lines.push(el("li", { class: "diff-chg" }, "~ service " + s));
  const denied = c.now_denied || [];
  fill(out,
    el("h2", {}, "What changes"),
    lines.length ? el("ul", { id: "policy-changes" }, lines) : el("p", { class: "muted" }, "No rule changes."),
    el("h2", {}, `Recent flows it would deny (${denied.length})`),
    denied.length ? el("div", { id: "policy-denied" }, denied.map((x, i) => el("div", { class: "card", "data-edge": `${x.src}|${x.dst}|${x.port}` },
      el("p", {}, badge("deny"), ` ${x.src} → ${x.dst}:${x.port}, now ${x.old_verdict} by ${x.old_rule}, would be denied by ${x.new_rule}`),
      (d.denied[i] || []).length ? table(["Time", "Event", "Source", "Destination", "Verdict", "Rule", "Bytes", "Reason"], d.denied[i].map(recordRow), "Newest records of this pair") : null)))
      : el("p", { class: "muted", id: "policy-denied-none" }, "None of the flows of the last day would be denied."),
    edgeList("Recent flows that would pass only by audit mode", c.now_audited),
    edgeList("Recent flows it would allow", c.now_allowed),
    el("details", {}, el("summary", {}, "As \"moat policy diff\" prints it"), el("pre", {}, d.text)));
  const can = session.canApply;
  document.getElementById("policy-apply").disabled = !can;
  if (!can) status("policy-status", `Applying needs the operator role; you are ${session.role}.`);
}

function edgeList(title, xs) {
  if (!xs || !xs.length) return null;
  return el("div", {}, el("h2", {}, title), el("ul", {}, xs.map((x) => el("li", {}, `${x.src} → ${x.dst}:${x.port} (${x.old_verdict} → ${x.new_verdict}, rule ${x.new_rule})`))));
}

function confirmApply() {
  if (!diffed || !session.canApply) return;
  const n = (diffed.changes.now_denied || []).length;
  const next = (current && current.policy.version || 0) + 1;
  document.getElementById("apply-summary").textContent =
    `This makes the pasted policy version ${next}, pushed to every agent within a second.` +
    (n ? ` ${n} pair(s) seen in the last day would be DENIED from then on.` : " No flow of the last day would be denied.");
  document.getElementById("apply-confirm").textContent = `Apply version ${next}`;
  document.getElementById("apply-dialog").showModal();
}

async function apply() {
  if (!diffed) return;
  status("policy-status", "applying…");
  try {
    const r = await post("/api/policy/apply", { yaml: diffed.yaml, base: diffed.base, confirm: true });
    status("policy-status", `Applied: version ${r.policy.version}.` + (r.warnings && r.warnings.length ? " Warnings: " + r.warnings.join("; ") : ""));
    diffed = null;
    document.getElementById("policy-apply").disabled = true;
    fill(document.getElementById("policy-diff-out"));
    showPolicy();
  } catch (e) {
    status("policy-status", e.message, true);
  }
}
