// The decisions dashboard: reads /ui/api/* (with the gateway key kept in this tab's sessionStorage) and draws it.
// Every value from the server is put in the page as text, never as HTML.
"use strict";

const KEY_SLOT = "llmrank-gateway-key";
const COLORS = ["#2f5fd0", "#d0622f", "#2f9e5f", "#8a3fc4", "#c4a23f", "#3fa8c4", "#c43f7a", "#6b7383", "#7a9e2f"];
const POLL_MS = { decisions: 2000, spend: 5000, quality: 5000, pool: 5000 };

const state = { view: "decisions", selected: null, backends: new Set(), tiers: new Set(), timer: null, charts: {} };
window.dashboard = state; // for a person at the console, and for the browser test

const shownRows = new WeakMap(); // table body → the JSON of the items it shows

/** Fill a table body with a row per item, rebuilt only when the items changed: the page polls, and a row a reader
 * is selecting or hovering would otherwise be replaced every few seconds. */
function showRows(selector, items, build) {
  const body = $(selector);
  const shown = JSON.stringify(items);
  if (shownRows.get(body) === shown) return;
  shownRows.set(body, shown);
  body.replaceChildren(...items.map(build));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

const $ = (selector) => document.querySelector(selector);
const money = (x) => (x === null || x === undefined ? "–" : "$" + (x < 0.01 ? x.toPrecision(3) : x.toFixed(4)));
const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const clock = (t) => new Date(t * 1000).toLocaleTimeString();
const td = (value, cls = "") => el("td", cls ? { class: cls } : {}, value);
/** A cell for backend names, which the CSS may shorten: the whole text stays in its tooltip. */
const nameCell = (value, cls) => Object.assign(td(value, cls), { title: value });

async function api(path) {
  const key = sessionStorage.getItem(KEY_SLOT);
  const response = await fetch(path, { headers: key ? { Authorization: "Bearer " + key } : {} });
  if (response.status === 401) throw new NeedsKey();
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message || response.statusText);
  return body;
}

class NeedsKey extends Error {}

async function start() {
  try {
    const session = await api("/ui/api/session");
    showContent(session);
  } catch (error) {
    if (error instanceof NeedsKey) return showLogin(false);
    return showError(error);
  }
}

function showLogin(refused) {
  $("#content").hidden = true;
  $("#login").hidden = false;
  $("#login-error").hidden = !refused;
  $("#key").focus();
}

function showContent(session) {
  $("#login").hidden = true;
  $("#content").hidden = false;
  $("#open-banner").hidden = session.auth_required;
  $("#logout").hidden = !session.auth_required;
  $("#router").textContent = "router " + session.router;
  $("#replica").textContent = "replica " + session.replica;
  if (!session.decisions_log) showError(new Error("The decisions log is off (LLMRANK_DECISIONS_LOG=false)."));
  showView(state.view);
}

function showError(error) {
  $("#error-banner").hidden = false;
  $("#error-banner").textContent = String(error.message || error);
}

function showSource(source) {
  $("#source").textContent =
    source === "redis" ? "Redis stream · shared by all replicas" : "this replica's memory · Redis absent or down";
}

function showView(view) {
  state.view = view;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    await { decisions: loadDecisions, spend: loadSpend, quality: loadQuality, pool: loadPool }[state.view]();
    $("#error-banner").hidden = true;
  } catch (error) {
    if (error instanceof NeedsKey) return showLogin(true);
    showError(error);
  }
  if ($("#live").checked) state.timer = setTimeout(refresh, POLL_MS[state.view]);
}

// --- decisions -------------------------------------------------------------------------------------------------

async function loadDecisions() {
  const params = new URLSearchParams({ limit: "200" });
  for (const name of ["tier", "backend", "outcome"]) {
    const value = $("#filter-" + name).value;
    if (value) params.set(name, value);
  }
  const data = await api("/ui/api/decisions?" + params);
  showSource(data.source);
  showRows("#decisions tbody", data.items, decisionRow);
  $("#decisions-count").textContent = `${data.items.length} shown, newest first`;
  for (const item of data.items) {
    if (item.backend) state.backends.add(item.backend);
    state.tiers.add(item.tier);
  }
  fillOptions("#filter-backend", state.backends);
  fillOptions("#filter-tier", state.tiers);
}

function fillOptions(selector, values) {
  const select = $(selector);
  const present = new Set([...select.options].map((o) => o.value));
  for (const value of [...values].sort()) if (!present.has(value)) select.append(el("option", { value }, value));
}

function decisionRow(d) {
  const tokens = d.prompt_tokens === null ? "–" : `${d.prompt_tokens} / ${d.completion_tokens}`;
  const row = el(
    "tr",
    { class: "outcome-" + d.outcome, dataset: { id: d.id, requestId: d.request_id } },
    td(clock(d.time)),
    td(d.request_id.slice(0, 14), "request"),
    td(`${d.tier} · ${Number(d.lambda).toPrecision(3)}`, "tier"),
    nameCell(d.backend ?? "(none answered)", "backend"),
    td(num(d.predicted_quality), "num"),
    td(money(d.estimated_cost), "num"),
    td(money(d.cost), "num"),
    td(tokens, "num"),
    td(num(d.route_ms, 2), "num"),
    td(d.cache, "cache"),
    nameCell(d.attempts.length > 1 ? d.attempts.slice(0, -1).map((a) => a.backend).join(", ") : "–", "fallbacks"),
    td(d.status, "status"),
    td(num(d.upstream_ms, 1), "num"),
    td(num(d.feedback_score, 2), "num feedback"),
  );
  row.classList.toggle("selected", d.id === state.selected);
  row.addEventListener("click", () => openDecision(d.id));
  return row;
}

async function openDecision(id) {
  state.selected = id;
  for (const row of document.querySelectorAll("#decisions tbody tr")) row.classList.toggle("selected", row.dataset.id === id);
  let d;
  try {
    d = await api("/ui/api/decisions/" + encodeURIComponent(id));
  } catch (error) {
    if (error instanceof NeedsKey) return showLogin(true);
    return showError(error);
  }
  $("#detail").hidden = false;
  $("#detail").dataset.id = id;
  $("#detail-title").textContent = `${d.tier} → ${d.backend ?? "no backend answered"}`;
  const facts = [
    ["request", d.request_id], ["time", new Date(d.time * 1000).toLocaleString()], ["replica", d.replica],
    ["λ", d.lambda], ["router's choice", d.chosen], ["cache", d.cache], ["route ms", num(d.route_ms, 2)],
    ["status", d.status + (d.error ? ` · ${d.error}` : "")], ["estimated / actual", `${money(d.estimated_cost)} / ${money(d.cost)}`],
    ["feedback", num(d.feedback_score, 2)], ["prompt", d.prompt ?? `digest ${d.prompt_digest} (text not stored)`],
  ];
  $("#detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#detail-candidates tbody").replaceChildren(
    ...d.candidates.map((c) =>
      el("tr", { class: c.backend === d.backend ? "chosen" : "" },
        td(c.backend), td(c.profile), td(num(c.predicted_quality), "num"), td(money(c.estimated_cost), "num"),
        td(num(c.utility, 4), "num")),
    ),
  );
  $("#detail-unfit").replaceChildren(
    ...(d.unfit.length ? d.unfit.map((u) => el("li", {}, `${u.backend}: ${u.reason} — ${u.detail}`)) : [el("li", { class: "muted" }, "none")]),
  );
  $("#detail-attempts").replaceChildren(
    ...d.attempts.map((a) => el("li", {}, `${a.backend}: ${a.status}${a.error ? " " + a.error : ""} in ${num(a.ms, 1)} ms`)),
  );
  const features = d.attributions ?? [];
  $("#detail-features-missing").hidden = d.attributions !== null;
  $("#detail-features-for").textContent = d.attributions_for ? `for ${d.attributions_for}'s q̂` : "";
  $("#detail-features tbody").replaceChildren(
    ...features.map((f) =>
      el("tr", {}, el("td", {}, f.feature, el("div", { class: "muted small" }, f.description)),
        td(f.value === null ? "–" : num(f.value), "num"), td(num(f.attribution, 4), "num")),
    ),
  );
}

// --- spend and traffic -----------------------------------------------------------------------------------------

async function loadSpend() {
  const data = await api("/ui/api/summary?window=" + $("#window").value);
  showSource(data.source);
  const backends = Object.keys(data.backends);
  const lat = data.latency_ms;
  const cards = [
    ["requests", data.requests], ["actual $", money(sum(backends.map((b) => data.backends[b].cost)))],
    ["estimated $", money(sum(backends.map((b) => data.backends[b].estimated_cost)))],
    ["routing p50 / p95", `${num(lat.route.p50, 2)} / ${num(lat.route.p95, 2)} ms`],
    ["upstream p50 / p95", `${num(lat.upstream.p50, 1)} / ${num(lat.upstream.p95, 1)} ms`],
    ["fallbacks · errors", `${data.outcomes.fallback ?? 0} · ${data.outcomes.error ?? 0}`],
  ];
  $("#spend-cards").replaceChildren(...cards.map(([k, v]) => el("div", { class: "card" }, k, el("b", {}, v))));
  $("#spend-note").textContent = data.oldest
    ? `${data.requests} decisions since ${new Date(data.oldest * 1000).toLocaleString()}`
    : "no decisions in this window";
  showRows("#spend-table tbody", backends.map((b) => [b, data.backends[b]]), ([b, s]) =>
    el("tr", {}, td(b), td(s.requests, "num"), td((100 * s.share).toFixed(1) + " %", "num"), td(money(s.cost), "num"),
      td(money(s.estimated_cost), "num"), td(s.estimated_cost ? num(s.cost / s.estimated_cost, 2) : "–", "num")));
  const tiers = Object.keys(data.by_tier);
  const columns = [...new Set(tiers.flatMap((t) => Object.keys(data.by_tier[t])))].sort();
  showRows("#tier-table thead", [columns], (cs) => el("tr", {}, el("th", {}, "tier"), ...cs.map((c) => el("th", {}, c))));
  showRows("#tier-table tbody", tiers.map((t) => [t, columns.map((c) => data.by_tier[t][c] ?? 0)]), ([t, counts]) =>
    el("tr", {}, td(t), ...counts.map((n) => td(n, "num"))));
  const series = backends.flatMap((b, i) => [
    { label: b, stroke: COLORS[i % COLORS.length], width: 2, value: (_, v) => money(v) },
    { label: b + " (estimate)", stroke: COLORS[i % COLORS.length], dash: [6, 4], value: (_, v) => money(v) },
  ]);
  const values = backends.flatMap((b) => [data.backends[b].cumulative_cost, data.backends[b].cumulative_estimated_cost]);
  drawChart("spend", "#spend-chart", data.times, series, values);
  drawChart("traffic", "#traffic-chart", data.times,
    backends.map((b, i) => ({ label: b, stroke: COLORS[i % COLORS.length], width: 2 })),
    backends.map((b) => data.backends[b].requests_per_bucket));
  const pick = (list, p) => list.map((x) => x[p]);
  drawChart("latency", "#latency-chart", data.times, [
    { label: "routing p50", stroke: COLORS[0] }, { label: "routing p95", stroke: COLORS[0], dash: [6, 4] },
    { label: "upstream p50", stroke: COLORS[1] }, { label: "upstream p95", stroke: COLORS[1], dash: [6, 4] },
  ], [pick(lat.route_per_bucket, "p50"), pick(lat.route_per_bucket, "p95"),
      pick(lat.upstream_per_bucket, "p50"), pick(lat.upstream_per_bucket, "p95")]);
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function drawChart(name, selector, times, series, values) {
  const target = $(selector);
  const width = Math.max(320, target.clientWidth - 16);
  const data = [times, ...values];
  const old = state.charts[name];
  if (old && old.series.length === series.length + 1 && old.series.slice(1).every((s, i) => s.label === series[i].label)) {
    old.setData(data);
    return;
  }
  if (old) old.destroy();
  const opts = { width, height: 220, series: [{}, ...series], scales: { x: { time: true } }, legend: { live: false } };
  state.charts[name] = new uPlot(opts, data, target);
}

// --- quality and pool ------------------------------------------------------------------------------------------

async function loadQuality() {
  const data = await api("/ui/api/quality");
  showSource(data.source);
  showRows("#quality-table tbody", data.backends, (q) => {
    const flagged = q.gap !== null && Math.abs(q.gap) >= 0.15 && q.feedback >= 5;
    return el("tr", { class: flagged ? "flagged" : "" }, td(q.backend), td(q.answers, "num"),
      td(num(q.mean_predicted_quality), "num"), td(q.feedback, "num"), td(num(q.mean_feedback_score), "num"),
      td(num(q.mean_predicted_with_feedback), "num"), td(q.gap === null ? "–" : (q.gap > 0 ? "+" : "") + num(q.gap), "num"));
  });
}

async function loadPool() {
  const data = await api("/ui/api/pool");
  $("#reload-error").hidden = !data.last_reload_error;
  $("#reload-error").textContent = data.last_reload_error
    ? "config/models.yaml on disk is invalid; the last good config is still served:\n" + data.last_reload_error
    : "";
  const lambdas = Object.entries(data.tiers.lambda).map(([t, l]) => `${t} λ=${Number(l).toPrecision(4)}`).join(" · ");
  $("#pool-note").textContent = `${data.backends.length} backends · router ${data.router} · Redis ${data.redis} · ` +
    `default tier ${data.tiers.default} · ${lambdas}`;
  const takes = (l) => ["vision", "tools", "audio", "files"].filter((k) => l[k]).join(", ") || "text";
  showRows("#pool-table tbody", data.backends, (b) => {
    const cd = b.cooldown;
    const cooling = cd.cooling_s > 0 ? `sitting out ${cd.cooling_s} s` : cd.failures_in_a_row ? `${cd.failures_in_a_row} failed in a row` : "ready";
    return el("tr", {}, td(b.name), td(b.profile), td(b.profile_kind), td(b.litellm_model), td((b.transport === "auto" ? "auto → " + b.call_transport : b.transport) + (b.demo ? " (demo)" : "")),
      td(b.server ?? "–"), td(num(b.dollars_per_million_tokens.input, 2), "num"), td(num(b.dollars_per_million_tokens.output, 2), "num"),
      td(b.limits.max_input_tokens ?? "–", "num"), td(b.limits.max_output_tokens ?? "–", "num"), td(takes(b.limits)), td(cooling, "cooldown"));
  });
}

// --- wiring ----------------------------------------------------------------------------------------------------

for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
for (const id of ["#filter-tier", "#filter-backend", "#filter-outcome", "#window"]) $(id).addEventListener("change", refresh);
$("#live").addEventListener("change", refresh);
function closeDetail() {
  $("#detail").hidden = true;
  state.selected = null;
  for (const row of document.querySelectorAll("#decisions tbody tr.selected")) row.classList.remove("selected");
}
$("#detail-close").addEventListener("click", closeDetail);
document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !$("#detail").hidden) closeDetail(); });
$("#logout").addEventListener("click", () => { sessionStorage.removeItem(KEY_SLOT); location.reload(); });
$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_SLOT, $("#key").value);
  $("#key").value = "";
  try {
    showContent(await api("/ui/api/session"));
  } catch (error) {
    sessionStorage.removeItem(KEY_SLOT);
    if (error instanceof NeedsKey) showLogin(true);
    else showError(error);
  }
});
start();
