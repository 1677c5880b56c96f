// DOM console: plain JavaScript, no build step. Everything shown is put in the page as
// text (never as HTML), and every input is checked again by the server.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const state = { config: null, sku: null, skuRows: {}, sort: { key: "location_id", dir: "asc" },
  order: null, action: null, editing: null, validateTimer: null, lastOk: 0, session: null, started: false,
  channelSaid: null, reportTicket: 0 };

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fill(tbody, rows) { tbody.replaceChildren(...rows); }
function show(node, visible) { node.hidden = !visible; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function fmt(n, digits = 0) { return n === null || n === undefined ? "–" : Number(n).toFixed(digits); }

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: { Accept: "application/json" } };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  // Every write carries the session's token: a page elsewhere cannot read it, so cannot send it.
  if (init.method !== "GET" && state.session) init.headers["X-CSRF-Token"] = state.session.csrf_token;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    markLive(false);
    return { status: 0, body: { ok: false, error: "the console does not answer" } };
  }
  markLive(true);
  let body;
  try { body = await response.json(); } catch (e) { body = { ok: false, error: `HTTP ${response.status}` }; }
  if (response.status === 401 && state.session && !options.quiet) showLogin("Your session has ended: sign in again.");
  return { status: response.status, body };
}

// ---- signing in ---------------------------------------------------------------------------

function can(permission) { return Boolean(state.session && state.session.permissions.includes(permission)); }

function showLogin(reason) {
  state.session = null;
  for (const view of document.querySelectorAll(".view")) show(view, false);
  show($("#tabs"), false);
  show($("#whoami"), false);
  show($("#view-login"), true);
  $("#login-error").textContent = reason || "";
  show($("#login-error"), Boolean(reason));
  $("#login-user").focus();
}

function signedIn(session) {
  state.session = session;
  show($("#view-login"), false);
  show($("#tabs"), true);
  $("#whoami-name").textContent = session.user;
  $("#whoami-role").textContent = session.role;
  show($("#btn-logout"), session.via !== "proxy");
  show($("#whoami"), true);
  const editor = can("edit_rules");
  show($("#btn-publish"), editor);
  $("#rules-read-only").textContent = editor ? `Changes are published as ${session.user}.`
    : `As a ${session.role} you can validate and dry-run rules; publishing needs a rule editor.`;
  show($("#rules-read-only"), true);
  $("#channels-read-only").textContent = editor ? `Changes are recorded as made by ${session.user}.`
    : `As a ${session.role} you can see the policies; changing one needs a rule editor.`;
  show($("#channels-read-only"), true);
  show($("#report-save-row"), can("save_reports"));
  $("#report-read-only").textContent = `As a ${session.role} you can build and download reports; saving one needs an operator.`;
  show($("#report-read-only"), !can("save_reports"));
}

async function login(event) {
  event.preventDefault();
  const user = $("#login-user").value.trim(), password = $("#login-password").value;
  const { status, body } = await api("/api/login", { method: "POST", body: { user, password } });
  $("#login-password").value = "";
  if (status !== 200) {
    $("#login-error").textContent = body.error || `HTTP ${status}`;
    show($("#login-error"), true);
    return;
  }
  signedIn(body);
  if (state.started) route(); else start();
}

async function logout() {
  await api("/api/logout", { method: "POST", body: {} });
  location.reload();
}

async function boot() {
  $("#login-form").addEventListener("submit", login);
  $("#btn-logout").addEventListener("click", logout);
  const { status, body } = await api("/api/session", { quiet: true });
  if (status !== 200) { showLogin(status === 401 ? "" : body.error); return; }
  signedIn(body);
  start();
}

function markLive(ok) {
  if (ok) state.lastOk = Date.now();
  $("#live").classList.toggle("stale", !ok);
  $("#live").textContent = ok ? "live" : "disconnected";
}

// ---- tabs ---------------------------------------------------------------------------------

function currentTab() { return (location.hash.replace("#", "").split("/")[0]) || "inventory"; }

function selectTab(name) {
  for (const view of document.querySelectorAll(".view")) show(view, view.dataset.view === name);
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.setAttribute("aria-selected", tab.dataset.tab === name ? "true" : "false");
  }
  if (name === "rules") loadRules();
  if (name === "channels") loadChannels();
  if (name === "reports") loadReports();
  if (name === "health") loadHealth();
  if (name === "orders") { loadFeed(); loadQueues(); }
  if (name === "inventory") loadLowStock();
}

function route() {
  if (!state.session) return;
  const [tab, ...rest] = location.hash.replace("#", "").split("/");
  const arg = decodeURIComponent(rest.join("/"));
  selectTab(tab || "inventory");
  if (tab === "inventory" && arg && arg !== state.sku) { $("#sku-input").value = arg; openSku(arg); }
  if (tab === "orders" && arg && arg !== state.order) { $("#order-input").value = arg; openOrder(arg); }
  if (tab === "reports" && arg && arg !== state.savedName) openSavedByName(arg);
}

// ---- inventory ----------------------------------------------------------------------------

async function openSku(sku) {
  state.sku = sku;
  state.skuRows = {};
  await refreshSku(true);
}

async function refreshSku(first = false) {
  const sku = state.sku;
  if (!sku) return;
  const { status, body } = await api(`/api/inventory/${encodeURIComponent(sku)}`);
  if (sku !== state.sku) return;
  if (status !== 200) {
    $("#sku-error").textContent = body.error || `HTTP ${status}`;
    show($("#sku-error"), true);
    if (first) show($("#sku-result"), false);
    return;
  }
  show($("#sku-error"), false);
  show($("#sku-result"), true);
  $("#sku-title").textContent = body.sku;
  $("#sku-total").textContent = body.total_available;
  $("#sku-updated").textContent = when(body.updated_at);
  const previous = state.skuRows;
  state.skuRows = {};
  for (const row of body.locations) state.skuRows[row.location_id] = row;
  drawSkuTable(previous);
  drawMap(body.locations);
}

function stockClass(row) {
  if (row.available <= 0) return "out";
  if (row.available <= row.safety_stock) return "low";
  return "ok";
}

function drawSkuTable(previous = {}) {
  const { key, dir } = state.sort;
  const rows = Object.values(state.skuRows).sort((a, b) => {
    const x = a[key] ?? "", y = b[key] ?? "";
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return dir === "asc" ? order : -order;
  });
  for (const th of document.querySelectorAll("#sku-table th")) {
    if (th.dataset.key === key) th.dataset.dir = dir; else delete th.dataset.dir;
  }
  const cols = ["on_hand", "reserved", "safety_stock", "available"];
  fill($("#sku-table tbody"), rows.map((row) => {
    const before = previous[row.location_id];
    const changed = before && cols.some((c) => before[c] !== row[c]);
    return el("tr", { "data-location": row.location_id, class: changed ? "changed" : null },
      el("td", { text: row.location_id }), el("td", { text: row.name || "" }), el("td", { text: row.kind || "" }),
      cols.map((c) => el("td", { class: `num ${c === "available" ? stockClass(row) : ""}`, "data-col": c, text: row[c] })));
  }));
}

function drawMap(rows) {
  const svg = $("#sku-map");
  const placed = rows.filter((r) => typeof r.lat === "number" && typeof r.lon === "number");
  const nodes = [];
  if (!placed.length) {
    nodes.push(el("svg:text", { x: 20, y: 30, text: "No coordinates are known for these locations." }));
    svg.replaceChildren(...nodes);
    return;
  }
  const lons = placed.map((r) => r.lon), lats = placed.map((r) => r.lat);
  const pad = 2;
  const [x0, x1] = [Math.min(...lons) - pad, Math.max(...lons) + pad];
  const [y0, y1] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  // Labels go right of their circle: keep room for them on the right.
  const scale = Math.min(470 / (x1 - x0), 280 / (y1 - y0));
  const px = (lon) => 20 + (lon - x0) * scale, py = (lat) => 300 - (lat - y0) * scale;
  for (let lon = Math.ceil(x0 / 10) * 10; lon <= x1; lon += 10) {
    nodes.push(el("svg:line", { x1: px(lon), x2: px(lon), y1: 0, y2: 320, stroke: "#dbe3ec" }));
  }
  for (let lat = Math.ceil(y0 / 10) * 10; lat <= y1; lat += 10) {
    nodes.push(el("svg:line", { x1: 0, x2: 600, y1: py(lat), y2: py(lat), stroke: "#dbe3ec" }));
  }
  for (const row of placed.sort((a, b) => b.available - a.available)) {
    const r = 4 + Math.min(22, Math.sqrt(Math.max(0, row.available)) * 2);
    nodes.push(el("svg:circle", { cx: px(row.lon), cy: py(row.lat), r, class: stockClass(row), "data-location": row.location_id },
      el("svg:title", { text: `${row.location_id} ${row.name || ""}: ${row.available} available, ${row.on_hand} on hand` })));
    nodes.push(el("svg:text", { x: px(row.lon) + r + 2, y: py(row.lat) + 3, text: `${row.location_id} ${row.available}` }));
  }
  svg.replaceChildren(...nodes);
}

async function loadLowStock() {
  const threshold = Number($("#low-threshold").value || 0);
  const { status, body } = await api(`/api/low-stock?threshold=${encodeURIComponent(threshold)}&limit=50`);
  if (status !== 200) return;
  fill($("#low-stock-table tbody"), body.skus.map((s) => el("tr", { onclick: () => { location.hash = `inventory/${encodeURIComponent(s.sku)}`; } },
    el("td", { text: s.sku }), el("td", { class: "num", text: s.total_available }),
    el("td", { class: "num", text: s.locations }), el("td", { class: "num", text: s.out_at }),
    el("td", { text: when(s.updated_at) }))));
  show($("#low-stock-empty"), body.skus.length === 0);
}

async function suggestSkus() {
  const prefix = $("#sku-input").value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(prefix)) return;
  const { status, body } = await api(`/api/skus?prefix=${encodeURIComponent(prefix)}`);
  if (status === 200) fill($("#sku-suggestions"), body.skus.map((s) => el("option", { value: s })));
}

// ---- orders -------------------------------------------------------------------------------

async function openOrder(orderId) {
  if (orderId !== state.order) { closeAction(); show($("#action-answer"), false); }
  state.order = orderId;
  const { status, body } = await api(`/api/orders/${encodeURIComponent(orderId)}`);
  if (orderId !== state.order) return;
  if (status !== 200) {
    $("#order-error").textContent = body.error || `HTTP ${status}`;
    show($("#order-error"), true);
    show($("#order-result"), false);
    return;
  }
  show($("#order-error"), false);
  show($("#order-result"), true);
  $("#order-title").textContent = body.order_id;
  $("#order-status").textContent = body.status;
  $("#order-status").className = `badge ${body.status}`;
  $("#order-channel").textContent = body.channel;
  const parts = body.explanation_parts.length ? body.explanation_parts : ["No routing decision yet."];
  fill($("#order-explanation"), parts.map((p) => el("li", { text: p })));
  const rules = body.rules_fired.length ? body.rules_fired.map((r) => el("span", { class: "chip", text: r }))
    : [el("span", { class: "muted", text: "none" })];
  fill($("#order-rules"), rules);
  const told = (body.channel_calls || []).map((c) => ({ at: c.at, item: el("li", { class: "channel-call" },
    el("b", { text: `told ${c.channel}: ${c.kind === "FULFIL" ? "shipped" : "cancelled"}` }), " ",
    el("span", { text: [c.shipment_id, c.tracking_number && `tracking ${c.tracking_number}`].filter(Boolean).join(", ") }),
    el("div", { class: `action ${c.state}`, text: `${c.state} after ${c.attempts} call(s): ${c.detail}` }),
    el("div", { class: "when", text: when(c.at) })) }));
  const steps = body.history.map((h) => ({ at: h.at, item: el("li", {},
    el("b", { text: h.status }), " ", el("span", { text: h.reason || "" }),
    h.action_id ? el("div", { class: "action", text: `${h.action_kind} by ${h.requested_by}: ${h.action_result}` }) : null,
    el("div", { class: "when", text: when(h.at) })) }));
  const timeline = [...steps, ...told].sort((a, b) => new Date(a.at) - new Date(b.at));
  fill($("#order-timeline"), timeline.map((t) => t.item));
  drawOrderActions(body);
  fill($("#order-shipments tbody"), body.shipments.map((s) => el("tr", {},
    el("td", { text: s.shipment_id }), el("td", { text: s.location_id + (s.destination_location_id ? ` → ${s.destination_location_id}` : "") }),
    el("td", { text: s.kind }), el("td", { text: s.state }),
    el("td", { text: s.lines.map((l) => `${l.sku} ×${l.quantity}`).join(", ") }))));
  const back = body.backordered || [];
  $("#order-backordered").textContent = back.length ? `Backordered: ${back.map((l) => `${l.sku} ×${l.quantity}`).join(", ")}` : "";
  show($("#order-backordered"), back.length > 0);
  fill($("#order-commands tbody"), body.commands.map((c) => el("tr", {},
    el("td", { text: c.kind }), el("td", { text: c.location_id }), el("td", { text: c.shipment_id }),
    el("td", { text: c.detail }), el("td", { text: c.rules_fired.join(", ") }), el("td", { text: when(c.created_at) }))));
}

async function loadFeed() {
  const channel = $("#feed-channel").value, status = $("#feed-status").value;
  const query = new URLSearchParams({ limit: "100" });
  if (channel) query.set("channel", channel);
  if (status) query.set("status", status);
  const answer = await api(`/api/outcomes?${query}`);
  if (answer.status !== 200) return;
  const rows = answer.body.outcomes;
  fill($("#feed-table tbody"), rows.map((o) => el("tr", { "data-order": o.order_id, onclick: () => { location.hash = `orders/${encodeURIComponent(o.order_id)}`; } },
    el("td", { text: when(o.at) }), el("td", { text: o.order_id }), el("td", { text: o.channel }),
    el("td", {}, el("span", { class: `badge ${o.status}`, text: o.status })),
    el("td", { text: o.locations.join(", ") }), el("td", { text: o.rules_fired.join(", ") }), el("td", { text: o.reason }))));
  show($("#feed-empty"), rows.length === 0);
}

// ---- work queues and order actions --------------------------------------------------------

const QUEUES = ["held", "backordered", "acceptance", "pickup"];
const DONE = new Set(["SHIPPED", "COMPLETED", "CANCELLED", "REJECTED", "RETURN_AUTHORIZED", "RETURNED"]);

// What an order in a queue waits for, or where.
function waitsFor(queue, entry) {
  if (queue === "held") return (entry.holds || []).map((h) => `${h.reason} (${h.rule_id || h.placed_by || h.kind})`).join("; ");
  if (queue === "backordered") return "stock of " + (entry.waits || []).map((w) => `${w.sku} ×${w.quantity}`).join(", ");
  if (queue === "acceptance") return (entry.shipments || []).map((s) => `${s.location_id} to accept ${s.shipment_id}`).join(", ");
  return `collection at ${entry.store || (entry.shipments || []).map((s) => s.location_id).join(", ")}`;
}

async function loadQueues() {
  const { status, body } = await api("/api/queues?limit=50");
  const note = $("#queues-note");
  if (status !== 200) {
    note.textContent = body.error || `HTTP ${status}`;
    show(note, true);
    return;
  }
  const rows = QUEUES.flatMap((queue) => (body.queues[queue] || []).map((e) => el("tr",
    { "data-queue": queue, "data-order": e.order_id, onclick: () => { location.hash = `orders/${encodeURIComponent(e.order_id)}`; } },
    el("td", { text: queue }),
    el("td", {}, el("a", { href: `#orders/${encodeURIComponent(e.order_id)}`, text: e.order_id })),
    el("td", {}, el("span", { class: `badge ${e.status}`, text: e.status })),
    el("td", { text: e.age_s < 60 ? `${e.age_s} s` : duration(e.age_s * 1000) }), el("td", { text: waitsFor(queue, e) }))));
  fill($("#queues-table tbody"), rows);
  const missing = (body.unanswered || []).length ? ` (no answer from ${body.unanswered.join(", ")})` : "";
  note.textContent = rows.length ? missing : `No order is waiting.${missing}`;
  show(note, Boolean(note.textContent));
}

// The buttons an operator may press on the order shown, from what the order is now.
function drawOrderActions(order) {
  const buttons = [];
  const offer = (label, action) => buttons.push(el("button", { type: "button", class: "secondary", onclick: () => askAction(label, action) , text: label }));
  if (can("act_on_orders")) {
    if ((order.holds || []).length) offer("Release hold", { kind: "RELEASE_HOLD" });
    if ((order.backordered || []).length) offer("Retry backorder", { kind: "RETRY_BACKORDER" });
    if (!DONE.has(order.status)) offer("Hold", { kind: "PLACE_HOLD" });
    for (const s of order.shipments.filter((x) => x.state === "OPEN")) {
      offer(`Move shipment ${s.shipment_id}…`, { kind: "MOVE_SHIPMENT", shipment_id: s.shipment_id, from: s.location_id });
    }
  }
  fill($("#order-actions"), buttons);
}

function askAction(label, action) {
  state.action = { ...action, order_id: state.order };
  $("#action-title").textContent = `${label.replace(/…$/, "")} on ${state.order}: say why, then confirm.`;
  const moving = action.kind === "MOVE_SHIPMENT";
  show($("#action-location-label"), moving);
  show($("#action-location"), moving);
  $("#action-location").value = "";
  $("#action-location").placeholder = moving ? `anywhere but ${action.from}` : "";
  $("#action-reason").value = "";
  show($("#action-form"), true);
  $(moving ? "#action-location" : "#action-reason").focus();
}

function closeAction() {
  state.action = null;
  show($("#action-form"), false);
}

async function sendAction(event) {
  event.preventDefault();
  const action = state.action;
  if (!action) return;
  const body = { kind: action.kind, reason: $("#action-reason").value.trim() };
  if (action.shipment_id) body.shipment_id = action.shipment_id;
  const to = $("#action-location").value.trim();
  if (action.kind === "MOVE_SHIPMENT" && to) body.to_location_id = to;
  $("#action-confirm").disabled = true;
  const answer = await api(`/api/orders/${encodeURIComponent(action.order_id)}/actions`, { method: "POST", body });
  $("#action-confirm").disabled = false;
  const out = $("#action-answer");
  if (answer.status === 200) {
    out.textContent = `${action.kind} ${answer.body.result}: ${answer.body.reason} (now ${answer.body.status})`;
    out.className = answer.body.result === "APPLIED" ? "status ok" : "error";
  } else if (answer.status === 202) {
    out.textContent = `${action.kind} sent; no answer yet (action ${answer.body.action_id}). The timeline shows it once applied.`;
    out.className = "muted";
  } else {
    out.textContent = answer.body.error || `HTTP ${answer.status}`;
    out.className = "error";
  }
  show(out, true);
  if (answer.status === 200 || answer.status === 202) {
    closeAction();
    openOrder(action.order_id);
    loadQueues();
  }
}

// ---- rules --------------------------------------------------------------------------------

async function loadRules() {
  const { status, body } = await api("/api/rules");
  if (status !== 200) {
    $("#rules-source").textContent = body.error || `HTTP ${status}`;
    return;
  }
  $("#rules-source").textContent = `as ${body.worker} applies them`;
  fill($("#rules-table tbody"), body.rules.map((r) => el("tr", { "data-rule": r.rule_id },
    el("td", { text: r.rule_id }), el("td", { text: r.stage }), el("td", { class: "num", text: r.priority }),
    el("td", { class: "num", text: r.version }), el("td", { text: r.enabled ? "yes" : "no" }),
    el("td", { text: r.updated_by }), el("td", { text: when(r.updated_at) }), el("td", { class: "code", text: r.condition }),
    el("td", {}, el("button", { type: "button", class: "small secondary", onclick: () => editRule(r), text: "Edit" }), " ",
      el("button", { type: "button", class: "small secondary", onclick: () => loadHistory(r.rule_id), text: "History" })))));
  const refused = body.refused || [];
  fill($("#rules-refused-list"), refused.map((x) => el("li", { text: `${x.rule_id} v${x.version}: ${x.error}` })));
  show($("#rules-refused"), refused.length > 0);
}

function actionRow(type = "", value = "") {
  const stage = $("#rule-stage").value;
  const actions = state.config ? state.config.actions : {};
  const select = el("select", { class: "action-type", "aria-label": "action" },
    Object.entries(actions).filter(([, spec]) => spec.stage === stage)
      .map(([name]) => el("option", { value: name, text: name, selected: name === type })));
  const input = el("input", { class: "action-param", "aria-label": "action parameter", maxlength: 500, value });
  const hint = () => {
    const spec = actions[select.value];
    input.placeholder = spec ? `${spec.param}: ${spec.hint}` : "";
  };
  select.addEventListener("change", () => { hint(); scheduleValidate(); });
  input.addEventListener("input", scheduleValidate);
  hint();
  const row = el("div", { class: "action-row" }, select, input,
    el("button", { type: "button", class: "small secondary", text: "remove", onclick: () => { row.remove(); scheduleValidate(); } }));
  return row;
}

function formRule() {
  return {
    rule_id: $("#rule-id").value.trim(),
    stage: $("#rule-stage").value,
    priority: $("#rule-priority").value === "" ? null : Number($("#rule-priority").value),
    condition: $("#rule-condition").value,
    actions: [...document.querySelectorAll("#rule-actions .action-row")].map((row) => {
      const type = row.querySelector(".action-type").value;
      const spec = state.config.actions[type];
      return { type, params: spec ? { [spec.param]: row.querySelector(".action-param").value } : {} };
    }),
    description: $("#rule-description").value,
    enabled: $("#rule-enabled").checked,
    stop_processing: $("#rule-stop").checked,
  };
}

function showFieldErrors(errors) {
  for (const node of document.querySelectorAll("[data-error-for]")) node.textContent = "";
  const status = $("#condition-status");
  const condition = errors.find((e) => e.field === "condition");
  status.textContent = condition ? condition.message : (errors.length ? "" : "✓ the rule is valid");
  status.className = `status ${condition ? "bad" : errors.length ? "" : "ok"}`;
  for (const e of errors) {
    const node = document.querySelector(`[data-error-for="${CSS.escape(e.field)}"]`);
    if (node && e.field !== "condition") node.textContent = e.message;
  }
}

function message(text, bad) {
  const node = $("#rule-message");
  node.textContent = text;
  node.className = `message ${bad ? "bad" : ""}`;
  show(node, true);
}

function scheduleValidate() {
  clearTimeout(state.validateTimer);
  state.validateTimer = setTimeout(validateRule, 300);
}

async function validateRule() {
  const { body } = await api("/api/rules/validate", { method: "POST", body: formRule() });
  showFieldErrors(body.errors || (body.ok ? [] : [{ field: "body", message: body.error }]));
  return body.ok;
}

async function dryRun() {
  message("Dry-run: routing recent orders under the live rules and with this rule…", false);
  const last = Number($("#dry-run-last").value || 200);
  const { status, body } = await api("/api/rules/dry-run", { method: "POST", body: { ...formRule(), last } });
  if (status !== 200) {
    showFieldErrors(body.errors || []);
    message(`Not dry-run: ${body.error}`, true);
    show($("#dry-run-result"), false);
    return;
  }
  show($("#rule-message"), false);
  $("#dry-run-summary").textContent = body.summary;
  fill($("#dry-run-table tbody"), body.changes.map((c) => el("tr", {},
    el("td", { text: c.order_id }), el("td", { text: c.field }), el("td", { class: "code", text: c.live }), el("td", { class: "code", text: c.proposed }))));
  show($("#dry-run-result"), true);
}

async function publishRule() {
  const { status, body } = await api("/api/rules/publish", { method: "POST", body: formRule() });
  if (status !== 200) {
    showFieldErrors(body.errors || []);
    message(`Nothing was published: ${body.error}`, true);
    return;
  }
  message(body.message, false);
  if (body.published) $("#rule-form-title").textContent = `Edit ${body.rule_id} (version ${body.version})`;
  setTimeout(loadRules, 800);
  loadHistory(body.rule_id || $("#rule-id").value.trim());
}

function editRule(rule, keepMessage = false) {
  state.editing = rule.rule_id;
  $("#rule-form-title").textContent = `Edit ${rule.rule_id} (version ${rule.version})`;
  $("#rule-id").value = rule.rule_id;
  $("#rule-stage").value = rule.stage;
  $("#rule-priority").value = rule.priority;
  $("#rule-condition").value = rule.condition;
  $("#rule-description").value = rule.description || "";
  $("#rule-enabled").checked = rule.enabled;
  $("#rule-stop").checked = rule.stop_processing;
  fill($("#rule-actions"), rule.actions.map((a) => actionRow(a.type, Object.values(a.params)[0] || "")));
  show($("#dry-run-result"), false);
  if (!keepMessage) show($("#rule-message"), false);
  validateRule();
  if (!keepMessage) $("#rule-form").scrollIntoView({ behavior: "smooth" });
}

function newRule() {
  state.editing = null;
  $("#rule-form-title").textContent = "New rule";
  for (const id of ["#rule-id", "#rule-condition", "#rule-description"]) $(id).value = "";
  $("#rule-priority").value = 100;
  $("#rule-enabled").checked = true;
  $("#rule-stop").checked = false;
  fill($("#rule-actions"), [actionRow()]);
  showFieldErrors([]);
  $("#condition-status").textContent = "";
  show($("#dry-run-result"), false);
  show($("#rule-message"), false);
}

async function loadHistory(ruleId) {
  const { status, body } = await api(`/api/rules/${encodeURIComponent(ruleId)}/history`);
  if (status !== 200) return;
  $("#history-title").textContent = ruleId;
  const newest = body.versions.find((v) => !v.deleted && !v.refused);
  fill($("#history-table tbody"), body.versions.map((v) => v.deleted
    ? el("tr", {}, el("td", { colspan: 9, class: "muted", text: "deleted (tombstone)" }))
    : el("tr", { "data-version": v.version },
      el("td", { class: "num", text: v.version }), el("td", { text: v.updated_by }), el("td", { text: when(v.updated_at) }),
      el("td", { text: v.stage }), el("td", { class: "num", text: v.priority }), el("td", { text: v.enabled ? "yes" : "no" }),
      el("td", { class: "code", text: v.condition + (v.refused ? `  (refused: ${v.refused})` : "") }),
      el("td", { text: v.actions.map((a) => `${a.type}: ${Object.values(a.params).join(", ")}`).join("; ") }),
      el("td", {}, v === newest || v.refused || !can("edit_rules") ? null : el("button", { type: "button", class: "small secondary",
        text: `Roll back to v${v.version}`, onclick: () => rollback(ruleId, v.version) })))));
  show($("#rule-history"), true);
}

async function rollback(ruleId, version) {
  const { status, body } = await api(`/api/rules/${encodeURIComponent(ruleId)}/rollback`, { method: "POST", body: { version } });
  if (status !== 200) {
    showFieldErrors(body.errors || []);
    message(`Not rolled back: ${body.error}`, true);
    return;
  }
  message(`${body.message} (content of version ${version})`, false);
  setTimeout(loadRules, 800);
  await loadHistory(ruleId);
  const history = await api(`/api/rules/${encodeURIComponent(ruleId)}/history`);
  const restored = history.status === 200 && history.body.versions.find((v) => v.version === body.version);
  if (restored) editRule(restored, true);
}

// ---- channels -----------------------------------------------------------------------------

const KINDS = ["DC", "STORE"];

async function loadChannels() {
  const { status, body } = await api("/api/channels");
  show($("#channels-error"), status !== 200);
  if (status !== 200) {
    $("#channels-error").textContent = body.error || `HTTP ${status}`;
    return;
  }
  fill($("#channels-list"), body.channels.map(channelForm));
  const said = state.channelSaid;
  state.channelSaid = null;
  if (said) channelMessage(said.channel, said.text, false);
}

// One channel's policy as a form: what it is now, and the fields to change it.
function channelForm(entry) {
  const c = entry.channel, p = entry.policy || {}, id = (name) => `channel-${c}-${name}`;
  const editor = can("edit_rules");
  const error = (field) => el("div", { class: "field-error", "data-error-for": field });
  const number = (name, max) => el("input", { id: id(name), name, type: "number", min: 0, max, step: 1,
    class: "narrow", value: p[name] ?? 0, disabled: !editor });
  const kinds = KINDS.map((k) => el("label", {}, el("input", { type: "checkbox", id: id(`kind-${k}`), name: "location_kinds",
    value: k, checked: (p.location_kinds || []).includes(k), disabled: !editor }), ` ${k}`));
  const by = entry.policy ? `by ${p.updated_by}, ${when(p.updated_at)}` : "no policy: the default";
  const form = el("form", { class: "channel-form", "data-channel": c, novalidate: true, autocomplete: "off",
    "aria-labelledby": id("title") },
    el("h3", { id: id("title") }, c, el("small", { class: "summary", text: entry.summary }), el("small", { text: by })),
    el("div", { class: "form-grid" },
      el("label", { for: id("locations") }, "Locations"),
      el("div", {}, el("input", { id: id("locations"), name: "location_ids", class: "locations", maxlength: 10000,
        spellcheck: "false", value: (p.location_ids || []).join(", "), disabled: !editor,
        placeholder: "location ids, comma separated" }), error("location_ids")),
      el("span", { class: "form-label", id: id("kinds") }, "Kinds"),
      el("div", {}, el("div", { class: "kinds", role: "group", "aria-labelledby": id("kinds") }, kinds),
        error("location_kinds")),
      el("label", { for: id("buffer_units") }, "Buffer units"),
      el("div", {}, number("buffer_units"), " held back of each sku", error("buffer_units")),
      el("label", { for: id("buffer_pct") }, "Buffer percent"),
      el("div", {}, number("buffer_pct", 100), " % held back too (rounded up)", error("buffer_pct")),
      el("label", { for: id("low_stock_threshold") }, "Low-stock threshold"),
      el("div", {}, number("low_stock_threshold"), " below it the channel sees 0", error("low_stock_threshold"))),
    el("div", { class: "buttons" },
      editor ? el("button", { type: "submit", text: "Save" }) : null,
      editor ? el("button", { type: "button", class: "secondary", text: "Reset", onclick: () => resetChannel(c),
        title: "every location, nothing held back" }) : null),
    el("p", { class: "message", "aria-live": "polite", hidden: true }),
    el("div", { class: "field-error", "data-error-for": "body" }));
  form.addEventListener("submit", (event) => { event.preventDefault(); saveChannel(form, c); });
  return form;
}

function channelFormOf(channel) { return document.querySelector(`.channel-form[data-channel="${CSS.escape(channel)}"]`); }

function channelMessage(channel, text, bad) {
  const node = channelFormOf(channel)?.querySelector(".message");
  if (!node) return;
  node.textContent = text;
  node.className = `message ${bad ? "bad" : ""}`;
  show(node, true);
}

function channelErrors(form, errors) {
  for (const node of form.querySelectorAll("[data-error-for]")) node.textContent = "";
  for (const e of errors) {
    const node = form.querySelector(`[data-error-for="${CSS.escape(e.field)}"]`) || form.querySelector('[data-error-for="body"]');
    node.textContent = e.message;
  }
}

async function saveChannel(form, channel) {
  const value = (name) => form.querySelector(`[name="${name}"]`).value.trim();
  const whole = (name) => (value(name) === "" ? null : Number(value(name)));
  const body = {
    location_ids: value("location_ids").split(",").map((x) => x.trim()).filter(Boolean),
    location_kinds: [...form.querySelectorAll('[name="location_kinds"]:checked')].map((x) => x.value),
    buffer_units: whole("buffer_units"), buffer_pct: whole("buffer_pct"), low_stock_threshold: whole("low_stock_threshold"),
  };
  await writeChannel(form, channel, "PUT", body, "Not saved");
}

async function resetChannel(channel) {
  await writeChannel(channelFormOf(channel), channel, "DELETE", {}, "Not reset");
}

async function writeChannel(form, channel, method, body, refused) {
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  const answer = await api(`/api/channels/${encodeURIComponent(channel)}`, { method, body });
  for (const button of form.querySelectorAll("button")) button.disabled = false;
  if (answer.status !== 200) {
    channelErrors(form, answer.body.errors || []);
    channelMessage(channel, `${refused}: ${answer.body.error || `HTTP ${answer.status}`}`, true);
    return;
  }
  state.channelSaid = { channel, text: answer.body.message };
  await loadChannels();
}

// ---- reports ------------------------------------------------------------------------------

// Okabe-Ito colours (told apart with the common colour blindnesses) and a dash pattern per
// series, so no series is known by its colour alone; the table under the chart is its text.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"];
const DASHES = [[], [10, 4], [2, 3], [10, 3, 2, 3], [5, 5], [14, 5], [1, 3], [6, 2, 2, 2]];

async function loadReports() {
  if (!state.reportCatalogue) {
    const { status, body } = await api("/api/reports/catalogue");
    if (status !== 200) { reportMessage(body.error || `HTTP ${status}`, true); return; }
    state.reportCatalogue = body;
    fill($("#report-kpi"), body.kpis.map((k) => el("option", { value: k.name, text: k.title })));
    $("#report-kpi").value = "split_rate";
    reportBreakdowns();
  }
  await loadSavedReports();
  if (state.report) showReport(state.report, { quiet: true });
}

function dimension(name) { return name.replaceAll("_", " "); }  // location_kind: "location kind"

function reportKpi(name) { return state.reportCatalogue.kpis.find((k) => k.name === name); }

function reportBreakdowns() {
  const kpi = reportKpi($("#report-kpi").value), was = $("#report-by").value;
  fill($("#report-by"), [el("option", { value: "", text: "none" }), ...kpi.by.map((d) => el("option", { value: d, text: dimension(d) }))]);
  $("#report-by").value = kpi.by.includes(was) ? was : "";
  $("#report-by").disabled = kpi.by.length === 0;
}

function reportAsked() {
  let period = $("#report-period").value;
  if (period === "range") period = `${$("#report-from").value}..${$("#report-to").value}`;
  const by = $("#report-by").value;
  return { kpi: $("#report-kpi").value, period, grain: $("#report-grain").value, by: by ? [by] : [] };
}

function setReportForm(asked) {
  $("#report-kpi").value = asked.kpi;
  reportBreakdowns();
  const range = asked.period.includes("..");
  $("#report-period").value = range ? "range" : asked.period;
  if (range) [$("#report-from").value, $("#report-to").value] = asked.period.split("..");
  show($("#report-range"), range);
  $("#report-grain").value = asked.grain;
  $("#report-by").value = asked.by[0] || "";
}

function reportQuery(asked) {
  const query = new URLSearchParams({ kpi: asked.kpi, period: asked.period, grain: asked.grain });
  for (const part of asked.by) query.append("by", part);
  return query.toString();
}

function reportMessage(text, bad) {
  $("#report-message").textContent = text;
  $("#report-message").className = `message ${bad ? "bad" : ""}`;
  show($("#report-message"), Boolean(text));
}

async function showReport(asked, { quiet = false } = {}) {
  state.report = asked;  // what the live refresh asks for from now on, shown or not yet
  const query = reportQuery(asked), ticket = ++state.reportTicket;
  $("#report-result").setAttribute("aria-busy", "true");
  const { status, body } = await api(`/api/reports/run?${query}`);
  if (ticket !== state.reportTicket) return;  // a newer report was asked meanwhile: it shows
  $("#report-result").setAttribute("aria-busy", "false");
  if (status !== 200) { reportMessage(`Not shown: ${body.error || `HTTP ${status}`}`, true); return; }
  if (!quiet) reportMessage("", false);
  const by = body.breakdown.length ? `, by ${body.breakdown.map(dimension).join(" and ")}` : "";
  $("#report-title").textContent = body.title;
  $("#report-subtitle").textContent = `${body.unit} per ${body.grain}${by} · ${when(body.start)} to ${when(body.end)} (${body.timezone})`;
  $("#report-csv").href = `/api/reports/csv?${query}`;
  show($("#report-result"), true);  // shown first: the chart takes the width it is given
  drawReportTable(body);
  drawReportChart(body);
}

function windowLabel(row, grain) {
  return grain === "day" ? row.window_start.slice(0, 10) : `${row.window_start.slice(0, 10)} ${row.window_start.slice(11, 16)}`;
}

// The rows exactly as the CSV has them: the same strings, nothing rounded again.
function drawReportTable(body) {
  const head = ["Window", ...body.breakdown.map(dimension), "Value", "Numerator", "Denominator"];
  $("#report-table thead").replaceChildren(el("tr", {}, head.map((h, i) => el("th", { class: i > body.breakdown.length ? "num" : null, text: h }))));
  fill($("#report-table tbody"), body.rows.map((r) => el("tr", {},
    el("td", { title: `${r.window_start} to ${r.window_end}`, text: windowLabel(r, body.grain) }),
    r.dimension.map((d) => el("td", { text: d })),
    el("td", { class: "num", text: r.value }),
    el("td", { class: "num", text: r.numerator ?? "" }),
    el("td", { class: "num", text: r.denominator ?? "" }))));
  $("#report-table-caption").textContent = `${body.title}: ${body.rows.length} rows; the chart above draws these values.`;
  show($("#report-empty"), body.rows.length === 0);
}

function drawReportChart(body) {
  const note = $("#report-chart-note"), box = $("#report-chart");
  if (state.chart) { state.chart.destroy(); state.chart = null; }
  if (typeof window.uPlot !== "function") {
    note.textContent = "The chart library is not installed (make run fetches it, as python -m dom.console.assets does); the table holds the numbers.";
    box.removeAttribute("aria-label");
    return;
  }
  // One x per window; one series per breakdown value, null where that value has no row.
  const xs = [...new Set(body.rows.map((r) => Date.parse(r.window_start) / 1000))].sort((a, b) => a - b);
  const keys = [...new Set(body.rows.map((r) => r.dimension.join(" / ")))].sort();
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = keys.map(() => xs.map(() => null));
  for (const r of body.rows) ys[keys.indexOf(r.dimension.join(" / "))][at.get(Date.parse(r.window_start) / 1000)] = Number(r.value);
  const series = keys.map((key, i) => ({ label: key || body.title, stroke: PALETTE[i % PALETTE.length],
    dash: DASHES[i % DASHES.length], width: 2, points: { show: true, size: 7, fill: PALETTE[i % PALETTE.length] } }));
  const opts = {
    width: Math.max(box.clientWidth, 320), height: 300,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), body.timezone),
    series: [{ label: body.grain === "day" ? "day" : "hour" }, ...series],
    axes: [{}, { label: body.unit, size: 70 }],
    // the whole period, however few windows have data (one point alone spans years otherwise)
    scales: { x: { time: true, range: () => xRange(body) } },
    legend: { live: false },
  };
  box.setAttribute("aria-label", `Chart of ${body.title}: ${keys.length} series over ${xs.length} windows; the table below holds the same numbers.`);
  note.textContent = xs.length ? "" : "Nothing to draw in this period.";
  state.chart = new uPlot(opts, [xs, ...ys], box);
}

function xRange(body) {
  const from = Date.parse(body.start) / 1000, to = Date.parse(body.end) / 1000, pad = (to - from) * 0.03;
  return [from - pad, to + pad];
}

async function loadSavedReports() {
  const { status, body } = await api("/api/reports/saved");
  if (status !== 200) { reportMessage(body.error || `HTTP ${status}`, true); return; }
  const saver = can("save_reports");
  fill($("#saved-reports"), body.reports.map((r) => el("li", { "data-report": r.name },
    el("button", { type: "button", class: "open", "aria-current": state.savedName === r.name ? "true" : "false",
      onclick: () => openSaved(r) }, r.name,
      el("small", { text: `${r.kpi} · ${r.period} · ${r.grain}${r.by.length ? ` · by ${r.by.join(", ")}` : ""}` })),
    saver ? el("button", { type: "button", class: "secondary small", "aria-label": `Delete ${r.name}`, text: "×",
      onclick: () => deleteSaved(r.name) }) : null)));
  show($("#saved-empty"), body.reports.length === 0);
  state.savedReports = body.reports;
}

function openSaved(report) {
  state.savedName = report.name;
  $("#report-name").value = report.name;
  setReportForm(report);
  location.hash = `reports/${encodeURIComponent(report.name)}`;
  showReport({ kpi: report.kpi, period: report.period, grain: report.grain, by: report.by });
  for (const b of document.querySelectorAll("#saved-reports .open")) b.setAttribute("aria-current", String(b.closest("li").dataset.report === report.name));
}

async function saveReport() {
  const name = $("#report-name").value.trim();
  if (!name) { reportMessage("Not saved: give the report a name", true); $("#report-name").focus(); return; }
  const { status, body } = await api(`/api/reports/saved/${encodeURIComponent(name)}`, { method: "PUT", body: reportAsked() });
  if (status !== 200) { reportMessage(`Not saved: ${body.error || `HTTP ${status}`}`, true); return; }
  state.savedName = body.report.name;
  reportMessage(`Saved “${body.report.name}” for everyone`, false);
  await loadSavedReports();
}

async function deleteSaved(name) {
  if (!window.confirm(`Delete the saved report “${name}” for everyone?`)) return;
  const { status, body } = await api(`/api/reports/saved/${encodeURIComponent(name)}`, { method: "DELETE", body: {} });
  reportMessage(status === 200 ? `Deleted “${name}”` : `Not deleted: ${body.error || `HTTP ${status}`}`, status !== 200);
  await loadSavedReports();
}

async function openSavedByName(name) {
  if (!state.savedReports) await loadReports();
  const found = (state.savedReports || []).find((r) => r.name === name);
  if (found) openSaved(found); else reportMessage(`There is no saved report “${name}”.`, true);
}

// ---- health -------------------------------------------------------------------------------

function card(label, value, tone) {
  return el("div", { class: `card ${tone || ""}`, "data-card": label }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }));
}

function rowsOf(map) {
  const rows = Object.entries(map || {}).sort((a, b) => b[1] - a[1]);
  if (!rows.length) return [el("tr", {}, el("td", { colspan: 2, class: "muted", text: "none" }))];
  return rows.map(([k, v]) => el("tr", {}, el("td", { text: k || "?" }), el("td", { class: "num", text: fmt(v) })));
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${fmt(ms)} ms`;
  if (ms < 120000) return `${fmt(ms / 1000, 1)} s`;
  if (ms < 7200000) return `${fmt(ms / 60000)} min`;
  return `${fmt(ms / 3600000)} h`;
}

// A worker's own verdict (GET /health/ on the worker): ok, starting, unhealthy, or unknown.
function workerHealth(w) {
  if (!w.up) return "down";
  return (w.health && w.health.status) || "unknown";
}

function stageCrashes(w) {
  const stages = Object.entries((w.health && w.health.stages) || {}).filter(([, s]) => s.crashes);
  return stages.map(([name, s]) => `${name} crashed ${s.crashes}×`).join(", ");
}

async function loadHealth() {
  const { status, body } = await api("/api/health");
  if (status !== 200) return;
  const t = body.total || {};
  const up = body.workers.filter((w) => w.up).length;
  const healthy = body.workers.filter((w) => workerHealth(w) === "ok").length;
  fill($("#health-alerts"), (body.problems || []).map((p) => el("div", {
    class: `alert ${p.status === "starting" ? "warn" : "bad"}`, "data-status": p.status,
    text: `${p.message} (${p.worker})`,
  })));
  fill($("#health-cards"), [
    card("Workers up", `${up} / ${body.workers.length}`, up === body.workers.length ? "good" : "bad"),
    card("Workers healthy", `${healthy} / ${body.workers.length}`, healthy === body.workers.length ? "good" : "bad"),
    card("Events / s", fmt(t.events_per_s, 1)),
    card("Orders / s", fmt(t.orders_per_s, 1)),
    card("Orders routed", fmt(Object.values(t.outcomes || {}).reduce((a, b) => a + b, 0))),
    card("Dead letters", fmt(t.dead_letters), t.dead_letters ? "bad" : "good"),
    card("Consumer lag", fmt(t.lag), t.lag > 1000 ? "bad" : ""),
    card("Decision latency (mean)", duration(t.latency_mean_ms)),
    card("Rules in force", fmt(t.rules_in_force), t.rules_refused ? "bad" : ""),
  ]);
  fill($("#health-outcomes tbody"), rowsOf(t.outcomes));
  fill($("#health-dlq tbody"), rowsOf(t.dead_letters_by_stage));
  fill($("#health-lag tbody"), rowsOf(t.lag_by_topic));
  fill($("#health-workers tbody"), body.workers.map((w) => el("tr", {},
    el("td", { text: w.url }), el("td", { text: w.up ? "yes" : `no: ${w.error}` }),
    el("td", { class: workerHealth(w) === "ok" ? "" : "error", text: [workerHealth(w), stageCrashes(w)].filter(Boolean).join(": ") }),
    el("td", { class: "num", text: fmt(w.events_per_s, 1) }), el("td", { class: "num", text: fmt(w.orders_per_s, 1) }),
    el("td", { class: "num", text: fmt(w.lag) }))));
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  state.started = true;
  const { body } = await api("/api/config");
  state.config = body;
  fill($("#rule-stage"), body.stages.map((s) => el("option", { value: s, text: s })));
  for (const c of body.channels) $("#feed-channel").append(el("option", { value: c, text: c }));
  for (const s of body.statuses) $("#feed-status").append(el("option", { value: s, text: s }));
  $("#rule-vocabulary").textContent = Object.entries(body.vocabulary).map(([k, v]) => `${k}: ${v}`).join("\n");
  const link = $("#grafana-link");
  if (body.grafana_url && /^https?:\/\//.test(body.grafana_url)) link.href = body.grafana_url; else show(link, false);
  fill($("#rule-actions"), [actionRow()]);

  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => { location.hash = tab.dataset.tab; });
  }
  $("#sku-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const sku = $("#sku-input").value.trim();
    if (!sku) return;
    state.sku = null;
    location.hash = `inventory/${encodeURIComponent(sku)}`;
    if (currentTab() === "inventory") openSku(sku);
  });
  $("#sku-input").addEventListener("input", suggestSkus);
  $("#order-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#order-input").value.trim();
    if (!id) return;
    state.order = null;
    location.hash = `orders/${encodeURIComponent(id)}`;
    openOrder(id);
  });
  for (const th of document.querySelectorAll("#sku-table th")) {
    th.addEventListener("click", () => {
      const same = state.sort.key === th.dataset.key;
      state.sort = { key: th.dataset.key, dir: same && state.sort.dir === "asc" ? "desc" : "asc" };
      drawSkuTable();
    });
  }
  $("#low-threshold").addEventListener("change", loadLowStock);
  $("#feed-channel").addEventListener("change", loadFeed);
  $("#feed-status").addEventListener("change", loadFeed);
  for (const id of ["#rule-id", "#rule-priority", "#rule-condition", "#rule-description"]) $(id).addEventListener("input", scheduleValidate);
  for (const id of ["#rule-enabled", "#rule-stop"]) $(id).addEventListener("change", scheduleValidate);
  $("#rule-stage").addEventListener("change", () => { fill($("#rule-actions"), [actionRow()]); scheduleValidate(); });
  $("#add-action").addEventListener("click", () => { $("#rule-actions").append(actionRow()); scheduleValidate(); });
  $("#btn-validate").addEventListener("click", validateRule);
  $("#btn-dry-run").addEventListener("click", dryRun);
  $("#btn-publish").addEventListener("click", publishRule);
  $("#btn-new").addEventListener("click", newRule);
  $("#action-form").addEventListener("submit", sendAction);
  $("#action-cancel").addEventListener("click", closeAction);
  $("#report-kpi").addEventListener("change", reportBreakdowns);
  $("#report-period").addEventListener("change", () => show($("#report-range"), $("#report-period").value === "range"));
  $("#report-form").addEventListener("submit", (e) => { e.preventDefault(); state.savedName = null; showReport(reportAsked()); });
  $("#report-save").addEventListener("click", saveReport);
  window.addEventListener("hashchange", route);
  route();

  // Live: short polling of whatever is on screen.
  setInterval(() => {
    if (document.hidden || !state.session) return;
    const tab = currentTab();
    if (tab === "inventory") refreshSku();
    if (tab === "orders") { loadFeed(); if (state.order) openOrder(state.order); }
    if (tab === "health") loadHealth();
  }, 1500);
  setInterval(() => { if (!document.hidden && state.session && currentTab() === "inventory") loadLowStock(); }, 4000);
  setInterval(() => { if (!document.hidden && state.session && currentTab() === "orders") loadQueues(); }, 4000);
  setInterval(() => {
    if (!document.hidden && state.session && currentTab() === "reports" && state.report) showReport(state.report, { quiet: true });
  }, 10000);
}

document.addEventListener("DOMContentLoaded", boot);
