// The reviewers' page of the spanguard review service: sign in with a token, work the queue, decide items.
//
// Everything an item holds comes from spans, which anyone with an ingest token can write: it is untrusted. It is
// put on the page only as text (textContent, createTextNode) or through attributes that cannot run code (class
// names from fixed lists, title, numbers); never through innerHTML. The page is served with a strict CSP (no inline
// script or style), so nothing here sets style attributes either: looks change through classes.
"use strict";

(() => {
  const TOKEN_KEY = "spanguard.review.token";
  const PAGE = 100;
  const RISKS = new Set(["green", "yellow", "red"]);
  const TIERS = new Set(["spot_check", "factual_verification", "dual_approval"]);
  const ROLES = new Set(["system", "user", "assistant", "tool"]);
  const STATUSES = new Set(["pending", "claimed", "done", "expired"]);
  const OUTCOME_WORDS = { approve: "approved", reject: "rejected", correct: "corrected" };
  // The redaction processor's placeholders: <EMAIL_ADDRESS>, <PERSON:3f2a9c1b>, <DROPPED_KEY>, <REDACTION_FAILED>.
  const PLACEHOLDER = /<([A-Z][A-Z0-9_]*)(?::[0-9a-f]{8})?>/g;
  const TEXT_INPUTS = new Set(["radio", "checkbox", "button", "submit", "reset", "image", "range", "color"]);
  const MAX_DEPTH_CLASS = 15;
  const MAX_SPAN_ROWS = 2000; // a trace may hold 20,000 spans: the tree shows the first ones
  // The filters whose choices come from GET /v1/review-items/facets: [filter key, facet of the answer, select id].
  const FACET_FILTERS = [
    ["reason", "reasons", "f-reason"],
    ["model", "models", "f-model"],
  ];

  const state = {
    token: null,
    me: null,
    view: null,
    filters: { status: "pending,expired", tier: "", reason: "", model: "", since: "", until: "" },
    queue: [],
    queueRequest: 0,
    hasMore: false,
    selected: 0,
    item: null,
    held: false, // the signed-in reviewer holds the item's lease
    claimedHere: false, // ... because this view claimed it (so leaving it undecided gives it back)
    decided: false,
    thumbs: null,
    originalAnswer: "",
    busy: false,
  };

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers: text only -----------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  /** Appends `text` to `parent`, with each redaction placeholder in a <mark>. */
  function appendMarked(parent, text) {
    const value = String(text);
    let last = 0;
    PLACEHOLDER.lastIndex = 0;
    let match;
    while ((match = PLACEHOLDER.exec(value)) !== null) {
      if (match.index > last) parent.appendChild(document.createTextNode(value.slice(last, match.index)));
      const mark = el("mark", "redacted", match[0]);
      mark.title = `redacted: ${match[1]}`;
      parent.appendChild(mark);
      last = match.index + match[0].length;
    }
    if (last < value.length) parent.appendChild(document.createTextNode(value.slice(last)));
    return parent;
  }

  function chip(text, className) {
    return el("span", `chip${className ? ` ${className}` : ""}`, text);
  }

  function riskBadge(risk) {
    const known = RISKS.has(risk) ? risk : "unknown";
    const badge = el("span", `badge risk-${known}`, risk);
    badge.title = `risk tier: ${risk}`;
    return badge;
  }

  function tierBadge(tier) {
    const known = TIERS.has(tier) ? tier : "unknown";
    return el("span", `tier tier-${known}`, tier);
  }

  function pretty(value) {
    if (typeof value === "string") {
      const trimmed = value.trim();
      if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
        try {
          return JSON.stringify(JSON.parse(trimmed), null, 2);
        } catch (_) {
          return value;
        }
      }
      return value;
    }
    if (value === undefined) return "";
    try {
      return JSON.stringify(value, null, 2);
    } catch (_) {
      return String(value);
    }
  }

  function safeHttpUrl(value) {
    if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function formatMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "–";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    return `${(ms / 60000).toFixed(1)} min`;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso || "") : date.toLocaleString();
  }

  function age(iso) {
    const then = new Date(iso).getTime();
    if (isNaN(then)) return "?";
    const seconds = Math.max(0, (Date.now() - then) / 1000);
    if (seconds < 60) return `${Math.floor(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
    return `${Math.floor(seconds / 86400)} d`;
  }

  function statusText(item) {
    const status = STATUSES.has(item.status) ? item.status : "unknown";
    let text = item.status;
    if (item.status === "claimed" && item.lease_owner) text = `claimed by ${item.lease_owner}`;
    if (item.status === "done" && item.outcome) text = `done: ${item.outcome}`;
    if (item.tier === "dual_approval" && item.approvals && item.approvals.length && item.status !== "done") {
      text += ` (${item.approvals.length}/2 approved: ${item.approvals.join(", ")})`;
    }
    return el("span", `status status-${status}`, text);
  }

  // -- flash messages -------------------------------------------------------------------------------------------

  let flashTimer = null;

  function flash(message, kind = "ok") {
    const box = $("flash");
    box.textContent = message;
    box.className = `flash flash-${kind === "error" ? "error" : "ok"}`;
    box.hidden = false;
    if (flashTimer) clearTimeout(flashTimer);
    flashTimer = kind === "error" ? null : setTimeout(() => (box.hidden = true), 10000);
  }

  function showError(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- the API ----------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${state.token}` };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, "the review service cannot be reached");
    }
    let data = null;
    if ((response.headers.get("content-type") || "").includes("application/json")) {
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
      if (response.status === 401) signedOut(detail);
      throw new ApiError(response.status, detail);
    }
    return response.status === 204 ? null : data;
  }

  /** Reports an API error where it belongs, unless it was a 401 (which already went back to sign-in). */
  function report(error, where) {
    if (error instanceof ApiError && error.status === 401) return;
    const message = error instanceof ApiError ? error.detail : `unexpected error: ${error && error.message}`;
    if (where) showError(where, message);
    else flash(message, "error");
  }

  // Page actions (open, move, decide, release, go back) run one after another, in the order they were asked for:
  // keys pressed while an item is loading then act on the item they were meant for.
  let chain = Promise.resolve();

  function act(action) {
    chain = chain.then(action).catch((error) => report(error));
    return chain;
  }

  function setBusy(busy) {
    state.busy = busy;
    document.body.classList.toggle("busy", busy);
  }

  // -- views ------------------------------------------------------------------------------------------------------

  function show(view) {
    state.view = view;
    $("signin-view").hidden = view !== "signin";
    $("queue-view").hidden = view !== "queue";
    $("item-view").hidden = view !== "item";
    $("session").hidden = view === "signin";
    document.title = view === "item" && state.item ? `#${state.item.id} – spanguard review` : "spanguard review";
    // The sign-in view keeps an #item= link, so that it opens once signed in.
    if (view === "queue" && location.hash) history.replaceState(null, "", location.pathname + location.search);
  }

  // -- sign in / out ----------------------------------------------------------------------------------------------

  async function signIn(token, restoring) {
    state.token = token;
    showError("signin-error", "");
    let me;
    try {
      me = await api("GET", "/v1/me");
    } catch (error) {
      if (error.status === 401 && restoring) {
        showError("signin-error", `Your session ended (${error.detail}). Sign in again.`);
      } else if (error.status !== 401) {
        state.token = null;
        showError("signin-error", `Sign-in failed: ${error.detail || error.message}`);
      }
      return;
    }
    if (me.role !== "reviewer" && me.role !== "admin") {
      forget();
      showError("signin-error", `This is an ${me.role} token; the page needs a reviewer (or admin) token.`);
      return;
    }
    state.me = me;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("whoami").textContent = `${me.name} (${me.role})`;
    const linked = /^#item=(\d+)$/.exec(location.hash);
    if (linked) {
      await loadQueue();
      await openItem(Number(linked[1]));
    } else {
      show("queue");
      await loadQueue();
      focusSelectedRow();
    }
    if (!restoring) flash(`Signed in as ${me.name}.`);
  }

  function forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.me = null;
    state.item = null;
    state.held = false;
    state.claimedHere = false;
    state.queue = [];
  }

  /** A 401 anywhere: forget the token and ask for one again. */
  function signedOut(detail) {
    const wasSignedIn = state.me !== null;
    forget();
    show("signin");
    showError(
      "signin-error",
      wasSignedIn ? `Your session ended (${detail}). Sign in again.` : `That token was not accepted: ${detail}.`,
    );
    $("token").focus();
  }

  async function signOut() {
    await leaveItem();
    forget();
    show("signin");
    showError("signin-error", "");
    flash("Signed out.");
    $("token").focus();
  }

  // -- the queue --------------------------------------------------------------------------------------------------

  function isoDate(value, addDays) {
    const parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!parts) return null;
    const date = new Date(Number(parts[1]), Number(parts[2]) - 1, Number(parts[3]) + addDays);
    return isNaN(date.getTime()) ? null : date.toISOString();
  }

  function queueQuery(offset) {
    const f = state.filters;
    const params = new URLSearchParams();
    if (f.status) params.set("status", f.status);
    if (f.tier) params.set("tier", f.tier);
    if (f.reason) params.set("reason", f.reason);
    if (f.model) params.set("model", f.model);
    const since = isoDate(f.since, 0);
    const until = isoDate(f.until, 1); // "to" is inclusive: until the next day's midnight (local time)
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    params.set("limit", String(PAGE));
    params.set("offset", String(offset));
    return `/v1/review-items?${params}`;
  }

  async function loadQueue(append) {
    showError("queue-error", "");
    const f = state.filters;
    if (f.since && f.until && f.since > f.until) {
      showError("queue-error", "The From date is after the To date.");
      return;
    }
    const request = ++state.queueRequest; // only the latest request's answer is shown
    if (!append) {
      // The filter choices first, so that a chosen value that is gone is not applied to the items either.
      const status = f.status ? `?${new URLSearchParams({ status: f.status })}` : "";
      let facets = null;
      try {
        facets = await api("GET", `/v1/review-items/facets${status}`);
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return; // already back at sign-in
        // Otherwise the choices stay as they were: the queue itself can still be shown.
      }
      if (request !== state.queueRequest) return;
      if (facets) renderFacets(facets);
    }
    let data;
    try {
      data = await api("GET", queueQuery(append ? state.queue.length : 0));
    } catch (error) {
      if (request === state.queueRequest) report(error, "queue-error");
      return;
    }
    if (request !== state.queueRequest) return;
    const items = Array.isArray(data && data.items) ? data.items : [];
    state.queue = append ? state.queue.concat(items) : items;
    state.hasMore = items.length === PAGE;
    if (!append) state.selected = Math.min(state.selected, Math.max(0, state.queue.length - 1));
    renderQueue();
  }

  function renderQueue() {
    const body = $("queue-rows");
    clear(body);
    state.queue.forEach((item, index) => {
      const row = el("tr", "queue-row");
      row.tabIndex = 0;
      row.dataset.index = String(index);
      row.setAttribute("aria-label", `Item ${item.id}, ${item.risk_tier} risk, ${item.tier}, ${item.status}`);
      if (index === state.selected) row.classList.add("selected");

      row.appendChild(el("td", "num", `#${item.id}`));
      const risk = el("td");
      risk.appendChild(riskBadge(item.risk_tier));
      row.appendChild(risk);
      const tier = el("td");
      tier.appendChild(tierBadge(item.tier));
      row.appendChild(tier);
      const reasons = el("td", "chips");
      (item.reasons || []).forEach((reason) => reasons.appendChild(chip(reason)));
      row.appendChild(reasons);
      row.appendChild(el("td", "models", (item.models || []).join(", ")));
      const preview = el("td", "preview");
      appendMarked(preview, item.preview || "");
      preview.title = item.preview || "";
      row.appendChild(preview);
      const ageCell = el("td", "age", age(item.created_at));
      ageCell.title = formatTime(item.created_at);
      row.appendChild(ageCell);
      const status = el("td");
      status.appendChild(statusText(item));
      row.appendChild(status);
      body.appendChild(row);
    });
    $("queue-empty").hidden = state.queue.length > 0;
    $("queue-table").hidden = state.queue.length === 0;
    $("load-more").hidden = !state.hasMore;
  }

  /**
   * Fills the reason and model filters with the values the items of the status filter have, each with its number
   * of items, after "any". A chosen value that is no longer there falls back to "any" (and out of the filters).
   */
  function renderFacets(facets) {
    FACET_FILTERS.forEach(([key, facet, id]) => {
      const select = $(id);
      const counts = facets && typeof facets[facet] === "object" && facets[facet] !== null ? facets[facet] : {};
      const chosen = state.filters[key];
      while (select.options.length > 1) select.remove(1); // keeps "any"
      Object.keys(counts)
        .sort()
        .forEach((value) => {
          const option = document.createElement("option");
          option.value = value;
          const count = Number(counts[value]);
          option.textContent = Number.isFinite(count) ? `${value} (${count})` : value;
          select.appendChild(option);
        });
      select.value = chosen;
      if (select.value !== chosen) select.value = "";
      state.filters[key] = select.value;
    });
  }

  function rows() {
    return [...$("queue-rows").querySelectorAll("tr.queue-row")];
  }

  function selectRow(index, focus) {
    const all = rows();
    if (!all.length) return;
    state.selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === state.selected));
    const row = all[state.selected];
    if (focus) row.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function focusSelectedRow() {
    if (rows().length) selectRow(state.selected, true);
  }

  function readFilters() {
    state.filters = {
      status: $("f-status").value,
      tier: $("f-tier").value,
      reason: $("f-reason").value,
      model: $("f-model").value,
      since: $("f-since").value,
      until: $("f-until").value,
    };
    state.selected = 0;
  }

  async function backToQueue() {
    await leaveItem();
    if (!state.me) return;
    state.item = null;
    show("queue");
    await loadQueue();
    focusSelectedRow();
  }

  async function claimNext() {
    await leaveItem();
    if (!state.me) return;
    let item;
    try {
      const tier = state.filters.tier ? `?tier=${encodeURIComponent(state.filters.tier)}` : "";
      item = await api("POST", `/v1/review-items/claim-next${tier}`);
    } catch (error) {
      report(error, state.view === "queue" ? "queue-error" : null);
      return;
    }
    if (!item) {
      flash("Nothing left to review.");
      return;
    }
    showItem(item, true, true, null);
  }

  // -- one item ---------------------------------------------------------------------------------------------------

  /** Opens item `id`: claims it for review, or shows it read-only when someone else holds it or it is done. */
  async function openItem(id) {
    await leaveItem();
    if (!state.me) return;
    const known = state.queue.find((entry) => entry.id === id);
    const heldBefore = known && known.status === "claimed" && state.me && known.lease_owner === state.me.name;
    let item;
    let held = false;
    let why = null;
    setBusy(true);
    try {
      if (known && known.status === "done") {
        item = await api("GET", `/v1/review-items/${id}`);
      } else {
        try {
          item = await api("POST", `/v1/review-items/${id}/claim`);
          held = true;
        } catch (error) {
          if (error.status !== 409) throw error;
          why = error.detail;
          item = await api("GET", `/v1/review-items/${id}`);
        }
      }
    } catch (error) {
      report(error);
      if (state.view !== "item" && state.me) show("queue");
      return;
    } finally {
      setBusy(false);
    }
    showItem(item, held, held && !heldBefore, why);
  }

  function showItem(item, held, claimedHere, why) {
    state.item = item;
    state.held = held && item.status === "claimed" && !!state.me && item.lease_owner === state.me.name;
    state.claimedHere = state.held && claimedHere;
    state.decided = false;
    const index = remember(item);
    if (index >= 0) state.selected = index;
    renderItem(why);
    show("item");
    history.replaceState(null, "", `#item=${item.id}`);
    $("item-title").focus();
  }

  /** Updates the queue's copy of an item from the API's answer about it. */
  function remember(item) {
    const index = state.queue.findIndex((entry) => entry.id === item.id);
    if (index >= 0) state.queue[index] = summaryOf(item);
    return index;
  }

  function summaryOf(item) {
    const summary = { ...item };
    delete summary.conversation;
    delete summary.decisions;
    return summary;
  }

  /** Leaving an item this view claimed and did not decide gives it back, so browsing does not hoard leases. */
  async function leaveItem() {
    const item = state.item;
    if (!item || !state.claimedHere || state.decided || !state.token) return;
    state.claimedHere = false;
    state.held = false;
    try {
      remember(await api("POST", `/v1/review-items/${item.id}/release`));
    } catch (_) {
      // A lease that expired or was already given back: nothing to do (a 401 already went back to sign-in).
    }
  }

  async function release() {
    const item = state.item;
    if (!item || !state.held) return;
    try {
      const summary = await api("POST", `/v1/review-items/${item.id}/release`);
      remember(summary);
      state.held = false;
      state.claimedHere = false;
      flash(`Released item #${item.id}; it is ${summary.status} again.`);
    } catch (error) {
      report(error, "decision-error");
      return;
    }
    await backToQueue();
  }

  async function moveBy(step) {
    if (!state.queue.length) return;
    const current = state.item ? state.queue.findIndex((entry) => entry.id === state.item.id) : state.selected;
    const target = (current < 0 ? state.selected : current) + step;
    if (target < 0 || target >= state.queue.length) {
      flash(step > 0 ? "This is the last item of the queue." : "This is the first item of the queue.");
      return;
    }
    state.selected = target;
    await openItem(state.queue[target].id);
  }

  function renderItem(why) {
    const item = state.item;
    const conversation = item.conversation && typeof item.conversation === "object" ? item.conversation : {};
    const me = state.me ? state.me.name : "";

    // title and meta
    const title = $("item-title");
    clear(title);
    title.tabIndex = -1;
    title.appendChild(document.createTextNode(`Item #${item.id} · trace `));
    const trace = el("code", "trace-id", item.trace_id);
    const url = safeHttpUrl(item.trace_url);
    if (url) {
      const link = el("a", "trace-link");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.appendChild(trace);
      link.appendChild(document.createTextNode(" ↗"));
      link.title = "open the trace in the tracing backend";
      title.appendChild(link);
    } else {
      title.appendChild(trace);
    }

    const meta = $("item-meta");
    clear(meta);
    const field = (label, ...values) => {
      const group = el("div", "meta-field");
      group.appendChild(el("dt", null, label));
      const dd = el("dd");
      values.forEach((value) => dd.appendChild(typeof value === "string" ? document.createTextNode(value) : value));
      group.appendChild(dd);
      meta.appendChild(group);
    };
    field("Tier", tierBadge(item.tier));
    field("Risk", riskBadge(item.risk_tier));
    const reasons = el("span", "chips");
    (item.reasons || []).forEach((reason) => reasons.appendChild(chip(reason)));
    if (!(item.reasons || []).length) reasons.textContent = "–";
    field("Reasons", reasons);
    field("Models", (conversation.models || item.models || []).join(", ") || "–");
    if ((conversation.providers || []).length) field("Provider", conversation.providers.join(", "));
    if (typeof conversation.started_at_unix_nano === "number") {
      field("Started", new Date(conversation.started_at_unix_nano / 1e6).toLocaleString());
    }
    field("Duration", formatMs(conversation.duration_ms));
    field("Spans", String(item.spans));
    const redaction = conversation.redaction || {};
    if (redaction.count || (redaction.entities || []).length) {
      const entities = el("span", "chips");
      entities.appendChild(document.createTextNode(`${redaction.count || 0} `));
      (redaction.entities || []).forEach((entity) => entities.appendChild(chip(entity, "chip-redacted")));
      field("Redacted", entities);
    }
    field("Status", statusText(item));
    field("Ingested", formatTime(item.created_at));

    // lease banner
    const banner = $("lease-banner");
    let message = null;
    if (!state.held) {
      if (item.status === "claimed" && item.lease_owner) {
        const until = item.lease_expires_at ? ` until ${formatTime(item.lease_expires_at)}` : "";
        message = `Read-only: ${item.lease_owner} is reviewing this item${until}.`;
      } else if (item.status === "done") {
        message = `Read-only: this item is done (${item.outcome || "decided"}).`;
      } else {
        message = `Read-only: ${why || "this item is not claimed by you"}. Claim it to decide.`;
      }
    } else if (item.tier === "dual_approval" && (item.approvals || []).includes(me)) {
      message = "You already approved this item: a second reviewer must approve it (you may still reject or correct).";
    } else if (item.tier === "dual_approval") {
      message = "Dual approval: two different reviewers must approve this item.";
    }
    banner.textContent = message || "";
    banner.hidden = !message;
    banner.classList.toggle("banner-readonly", !state.held);

    renderThread(conversation.turns || []);
    renderList("errors", "errors-section", conversation.errors || [], (error) => {
      const li = el("li");
      li.appendChild(el("span", "error-name", error.name || error.span_id));
      li.appendChild(document.createTextNode(`: ${error.error_type || "error"}`));
      return li;
    });
    renderList("notes", "notes-section", conversation.notes || [], (note) => el("li", null, note));
    renderCalls(conversation.llm_calls || [], conversation.tool_calls || []);
    renderSpans(conversation.spans || []);
    renderList("history", "history-section", item.decisions || [], renderDecision);
    resetDecision(item, conversation.turns || []);

    const position = state.queue.findIndex((entry) => entry.id === item.id);
    $("item-position").textContent = position >= 0 ? `${position + 1} of ${state.queue.length}` : "";
    $("prev-item").disabled = position <= 0;
    $("next-item").disabled = position < 0 || position >= state.queue.length - 1;
  }

  function renderList(listId, sectionId, values, render) {
    const list = $(listId);
    clear(list);
    values.forEach((value) => list.appendChild(render(value)));
    $(sectionId).hidden = values.length === 0;
  }

  function renderThread(turns) {
    const thread = $("thread");
    clear(thread);
    const toolNames = new Map();
    turns.forEach((turn) => {
      (turn.tool_calls || []).forEach((call) => {
        if (call && call.id) toolNames.set(call.id, call.name);
      });
    });
    if (!turns.length) thread.appendChild(el("p", "muted", "No conversation was recorded for this trace."));
    turns.forEach((turn) => thread.appendChild(renderTurn(turn, toolNames)));
  }

  function renderTurn(turn, toolNames) {
    const role = ROLES.has(turn.role) ? turn.role : "other";
    const article = el("article", `turn turn-${role}`);
    const head = el("header", "turn-head");
    head.appendChild(el("span", "role", turn.role));
    if (role === "assistant" && turn.model) head.appendChild(el("span", "model", turn.model));
    if (role === "tool") {
      const name = turn.tool_call_id ? toolNames.get(turn.tool_call_id) : null;
      const label = name ? `result of ${name}` : "tool result";
      head.appendChild(el("span", "tool-ref", turn.tool_call_id ? `${label} · ${turn.tool_call_id}` : label));
    }
    if (turn.finish_reason) head.appendChild(el("span", "finish", `finish: ${turn.finish_reason}`));
    if ((turn.redacted || []).length) {
      const redacted = el("span", "redaction-list");
      redacted.appendChild(document.createTextNode("redacted: "));
      turn.redacted.forEach((entity) => redacted.appendChild(chip(entity, "chip-redacted")));
      head.appendChild(redacted);
    }
    article.appendChild(head);

    const content = typeof turn.content === "string" ? turn.content : pretty(turn.content);
    if (content) {
      const body = el(role === "tool" ? "pre" : "div", "content");
      appendMarked(body, role === "tool" ? pretty(content) : content);
      article.appendChild(body);
    }
    (turn.tool_calls || []).forEach((call) => {
      const box = el("div", "tool-call");
      const label = el("div", "tool-call-head");
      label.appendChild(el("span", "tool-call-arrow", "calls "));
      label.appendChild(el("code", "tool-name", call.name || "(unnamed tool)"));
      if (call.id) label.appendChild(el("span", "muted", ` · ${call.id}`));
      box.appendChild(label);
      if (call.arguments !== null && call.arguments !== undefined) {
        box.appendChild(appendMarked(el("pre", "arguments"), pretty(call.arguments)));
      }
      article.appendChild(box);
    });
    if (!content && !(turn.tool_calls || []).length) article.appendChild(el("p", "muted empty-turn", "(empty)"));
    return article;
  }

  function renderCalls(llmCalls, toolCalls) {
    const body = $("calls-rows");
    clear(body);
    const cell = (row, text, className) => row.appendChild(el("td", className, text));
    llmCalls.forEach((call) => {
      const row = el("tr", call.status === "error" ? "row-error" : null);
      cell(row, call.name || call.operation || "model call");
      const model =
        call.response_model && call.request_model && call.response_model !== call.request_model
          ? `${call.request_model} → ${call.response_model}`
          : call.response_model || call.request_model || "–";
      cell(row, model);
      const tokens = [call.input_tokens, call.output_tokens].map((n) => (typeof n === "number" ? n : "–"));
      cell(row, tokens.join(" / "), "num");
      cell(row, (call.finish_reasons || []).join(", ") || "–");
      cell(row, formatMs(call.duration_ms), "num");
      cell(row, call.error_type ? `${call.status}: ${call.error_type}` : call.status);
      body.appendChild(row);
    });
    toolCalls.forEach((call) => {
      const row = el("tr", call.status === "error" ? "row-error" : null);
      cell(row, `tool ${call.name || ""}`.trim());
      cell(row, call.executed ? "executed" : "requested, no tool span");
      cell(row, "–", "num");
      cell(row, "–");
      cell(row, formatMs(call.duration_ms), "num");
      cell(row, call.status);
      body.appendChild(row);
    });
    $("calls-section").hidden = !llmCalls.length && !toolCalls.length;
  }

  const SVG = "http://www.w3.org/2000/svg";

  function renderSpans(allSpans) {
    const tree = $("spans");
    clear(tree);
    const spans = allSpans.slice(0, MAX_SPAN_ROWS);
    const count = allSpans.length;
    $("spans-title").textContent = `Span timing (${count} span${count === 1 ? "" : "s"})`;
    const starts = spans.map((s) => s.start_time_unix_nano).filter((n) => typeof n === "number");
    const t0 = starts.length ? Math.min(...starts) : 0;
    const ends = spans
      .filter((s) => typeof s.start_time_unix_nano === "number" && typeof s.duration_ms === "number")
      .map((s) => s.start_time_unix_nano - t0 + s.duration_ms * 1e6);
    const total = ends.length ? Math.max(...ends, 1) : 1;
    const rowsByIndex = [];
    spans.forEach((span, index) => {
      const depth = Math.max(0, Math.min(Number(span.depth) || 0, MAX_DEPTH_CLASS));
      const row = el("div", `span-row d${depth}${span.status === "error" ? " row-error" : ""}`);
      row.dataset.depth = String(Number(span.depth) || 0);
      const name = el("div", "span-name");
      const next = spans[index + 1];
      if (next && (Number(next.depth) || 0) > (Number(span.depth) || 0)) {
        const toggle = el("button", "toggle", "▾");
        toggle.type = "button";
        toggle.setAttribute("aria-expanded", "true");
        toggle.setAttribute("aria-label", "collapse the span's children");
        toggle.addEventListener("click", () => toggleSpan(rowsByIndex, index, toggle));
        name.appendChild(toggle);
      } else {
        name.appendChild(el("span", "toggle-space"));
      }
      name.appendChild(el("span", "span-label", span.name || span.span_id));
      name.title = span.span_id || "";
      row.appendChild(name);
      row.appendChild(el("div", "span-duration", formatMs(span.duration_ms)));
      const bar = document.createElementNS(SVG, "svg");
      bar.setAttribute("class", "span-bar");
      bar.setAttribute("viewBox", "0 0 1000 10");
      bar.setAttribute("preserveAspectRatio", "none");
      bar.setAttribute("aria-hidden", "true");
      if (typeof span.start_time_unix_nano === "number" && typeof span.duration_ms === "number") {
        const x = ((span.start_time_unix_nano - t0) / total) * 1000;
        const width = Math.max((span.duration_ms * 1e6 * 1000) / total, 2);
        const rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("x", String(Math.max(0, Math.min(x, 998))));
        rect.setAttribute("y", "1");
        rect.setAttribute("width", String(Math.min(width, 1000)));
        rect.setAttribute("height", "8");
        rect.setAttribute("class", span.status === "error" ? "bar-error" : "bar");
        bar.appendChild(rect);
      }
      row.appendChild(bar);
      rowsByIndex.push(row);
      tree.appendChild(row);
    });
    if (count > spans.length) tree.appendChild(el("p", "muted", `… and ${count - spans.length} more spans, not shown.`));
  }

  function toggleSpan(rowsByIndex, index, toggle) {
    const expanded = toggle.getAttribute("aria-expanded") === "true";
    toggle.setAttribute("aria-expanded", expanded ? "false" : "true");
    toggle.setAttribute("aria-label", expanded ? "expand the span's children" : "collapse the span's children");
    toggle.textContent = expanded ? "▸" : "▾";
    const depth = Number(rowsByIndex[index].dataset.depth);
    const collapsed = []; // depths of collapsed ancestors below `index` while re-expanding
    for (let i = index + 1; i < rowsByIndex.length; i++) {
      const row = rowsByIndex[i];
      const rowDepth = Number(row.dataset.depth);
      if (rowDepth <= depth) break;
      if (expanded) {
        row.hidden = true;
        continue;
      }
      while (collapsed.length && collapsed[collapsed.length - 1] >= rowDepth) collapsed.pop();
      row.hidden = collapsed.length > 0;
      const own = row.querySelector("button.toggle");
      if (own && own.getAttribute("aria-expanded") === "false") collapsed.push(rowDepth);
    }
  }

  function renderDecision(decision) {
    const li = el("li", `decision-record outcome-${OUTCOME_WORDS[decision.outcome] ? decision.outcome : "other"}`);
    const head = el("div", "decision-head");
    head.appendChild(el("strong", null, decision.reviewer));
    head.appendChild(document.createTextNode(` ${OUTCOME_WORDS[decision.outcome] || decision.outcome}`));
    if (decision.reason) head.appendChild(document.createTextNode(` (${decision.reason})`));
    head.appendChild(el("span", "muted", ` · ${formatTime(decision.at)}`));
    li.appendChild(head);
    const ratings = decision.ratings || {};
    const parts = [];
    if (ratings.thumbs) parts.push(`thumbs ${ratings.thumbs}`);
    if (ratings.likert) parts.push(`quality ${ratings.likert}/5`);
    const checklist = Object.entries(decision.checklist || {}).map(([k, v]) => `${k}: ${v ? "yes" : "no"}`);
    if (parts.length) li.appendChild(el("div", "muted", parts.join(" · ")));
    if (checklist.length) li.appendChild(el("div", "muted", checklist.join(" · ")));
    if (decision.reason_text) li.appendChild(el("div", "decision-text", decision.reason_text));
    if (decision.correction) li.appendChild(appendMarked(el("pre", "decision-text"), decision.correction));
    if (decision.comment) li.appendChild(el("div", "decision-text", decision.comment));
    return li;
  }

  // -- the decision panel -----------------------------------------------------------------------------------------

  function resetDecision(item, turns) {
    const enabled = state.held;
    $("decision-fields").disabled = !enabled;
    $("release").hidden = !enabled;
    $("claim").hidden = enabled || !(item.status === "pending" || item.status === "expired");
    showError("decision-error", "");

    const checklist = $("checklist");
    clear(checklist);
    const items = Array.isArray(item.checklist) ? item.checklist : [];
    items.forEach((name, index) => {
      const row = el("div", "check-item");
      row.dataset.item = name;
      const label = el("span", "check-name", name.replace(/_/g, " "));
      label.id = `check-${index}`;
      row.setAttribute("role", "radiogroup");
      row.setAttribute("aria-labelledby", label.id);
      row.appendChild(label);
      [
        ["yes", "true"],
        ["no", "false"],
      ].forEach(([word, value]) => {
        const option = el("label", `check-option check-${word}`);
        const input = document.createElement("input");
        input.type = "radio";
        input.name = `check-${index}`;
        input.value = value;
        input.addEventListener("change", () => row.classList.remove("missing"));
        option.appendChild(input);
        option.appendChild(document.createTextNode(` ${word}`));
        row.appendChild(option);
      });
      checklist.appendChild(row);
    });
    $("checklist-group").hidden = items.length === 0;

    const select = $("reject-reason");
    while (select.options.length > 1) select.remove(1);
    (item.reject_reasons || []).forEach((reason) => {
      const option = document.createElement("option");
      option.value = reason;
      option.textContent = reason.replace(/_/g, " ");
      select.appendChild(option);
    });
    select.value = "";
    $("reject-text").value = "";
    $("comment").value = "";
    setThumbs(null);
    document.querySelectorAll('input[name="likert"]').forEach((input) => (input.checked = false));

    const answers = turns.filter((turn) => turn.role === "assistant" && typeof turn.content === "string");
    const last = [...answers].reverse().find((turn) => turn.content.trim()) || answers[answers.length - 1];
    state.originalAnswer = last ? last.content : "";
    $("correction").value = item.golden || state.originalAnswer;
  }

  function setThumbs(value) {
    state.thumbs = value;
    $("thumbs-up").setAttribute("aria-pressed", value === "up" ? "true" : "false");
    $("thumbs-down").setAttribute("aria-pressed", value === "down" ? "true" : "false");
  }

  function setLikert(value) {
    const input = document.querySelector(`input[name="likert"][value="${Number(value)}"]`);
    if (input && !input.disabled) input.checked = true;
  }

  function checklistAnswers() {
    const answers = {};
    const missing = [];
    document.querySelectorAll("#checklist .check-item").forEach((row) => {
      const chosen = row.querySelector("input:checked");
      if (chosen) answers[row.dataset.item] = chosen.value === "true";
      else missing.push(row);
      row.classList.toggle("missing", !chosen);
    });
    return { answers, missing };
  }

  async function decide(outcome) {
    const item = state.item;
    if (!item || !state.held || state.busy || state.decided) return;
    showError("decision-error", "");
    const { answers, missing } = checklistAnswers();
    if (missing.length) {
      const names = missing.map((row) => row.dataset.item).join(", ");
      showError("decision-error", `Answer every checklist item first. Missing: ${names}.`);
      const first = missing[0].querySelector("input");
      if (first) first.focus();
      return;
    }
    const comment = $("comment").value.trim();
    const ratings = {};
    if (state.thumbs) ratings.thumbs = state.thumbs;
    const likert = document.querySelector('input[name="likert"]:checked');
    if (likert) ratings.likert = Number(likert.value);
    const body = {
      outcome,
      reason: null,
      reason_text: null,
      correction: null,
      ratings,
      checklist: answers,
      comment: comment || null,
    };
    if (outcome === "reject") {
      body.reason = $("reject-reason").value || null;
      if (!body.reason) {
        showError("decision-error", "Choose a reason for the rejection.");
        $("reject-reason").focus();
        return;
      }
      body.reason_text = $("reject-text").value.trim() || null;
    }
    if (outcome === "correct") {
      const correction = $("correction").value;
      if (!correction.trim()) {
        showError("decision-error", "Write the golden answer before submitting a correction.");
        $("correction").focus();
        return;
      }
      if (correction === state.originalAnswer) {
        showError("decision-error", "The golden answer is the model's answer unchanged: edit it first (or approve).");
        $("correction").focus();
        return;
      }
      body.correction = correction;
    }
    setBusy(true);
    let updated;
    try {
      updated = await api("POST", `/v1/review-items/${item.id}/decision`, body);
    } catch (error) {
      report(error, "decision-error");
      return;
    } finally {
      setBusy(false);
    }
    state.decided = true;
    state.held = false;
    state.claimedHere = false;
    let message = `Item #${item.id} ${OUTCOME_WORDS[outcome]}: now ${updated.status}`;
    if (updated.status === "done" && updated.outcome) message += ` (${updated.outcome})`;
    if (updated.tier === "dual_approval" && updated.status !== "done" && outcome === "approve") {
      message += `, ${(updated.approvals || []).length} of 2 approvals`;
    }
    flash(`${message}.`);
    await advance(remember(updated));
  }

  /** After a decision: the next item of the queue that can be reviewed, else back to the queue. */
  async function advance(index) {
    const me = state.me ? state.me.name : "";
    const open = (entry) =>
      entry.status === "pending" ||
      entry.status === "expired" ||
      (entry.status === "claimed" && entry.lease_owner === me);
    const next = state.queue.slice(index + 1).find(open);
    if (next) {
      state.selected = state.queue.indexOf(next);
      await openItem(next.id);
      return;
    }
    state.item = null;
    show("queue");
    await loadQueue();
    focusSelectedRow();
  }

  // -- keyboard -----------------------------------------------------------------------------------------------------

  function isTyping(target) {
    if (!target || !(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    const tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !TEXT_INPUTS.has((target.getAttribute("type") || "text").toLowerCase());
  }

  function toggleHelp() {
    const help = $("help");
    if (help.open) help.close();
    else help.showModal();
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const help = $("help");
    if (help.open) {
      if (event.key === "?") {
        event.preventDefault();
        help.close();
      }
      return; // Escape closes the dialog by itself
    }
    if (state.view === "signin" || !state.me) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") {
        event.preventDefault();
        event.target.blur();
      }
      return;
    }
    const key = event.key;
    if (key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (state.view === "queue") {
      if (key === "j" || key === "k") {
        event.preventDefault();
        selectRow(state.selected + (key === "j" ? 1 : -1), true);
      } else if (key === "Enter" && (event.target === document.body || event.target.classList.contains("queue-row"))) {
        const entry = state.queue[state.selected];
        if (entry) {
          event.preventDefault();
          act(() => openItem(entry.id));
        }
      }
      return;
    }
    if (state.view !== "item") return;
    switch (key) {
      case "Escape":
        event.preventDefault();
        act(backToQueue);
        break;
      case "j":
      case "k":
        event.preventDefault();
        act(() => moveBy(key === "j" ? 1 : -1));
        break;
      case "a":
        event.preventDefault();
        act(() => decide("approve"));
        break;
      case "r":
        if (!state.held) return;
        event.preventDefault();
        $("reject-reason").focus();
        break;
      case "e":
        if (!state.held) return;
        event.preventDefault();
        $("correction").focus();
        break;
      case "u":
      case "d":
        if (!state.held) return;
        event.preventDefault();
        setThumbs(state.thumbs === (key === "u" ? "up" : "down") ? null : key === "u" ? "up" : "down");
        break;
      case "1":
      case "2":
      case "3":
      case "4":
      case "5":
        if (!state.held) return;
        event.preventDefault();
        setLikert(key);
        break;
      default:
    }
  }

  // -- wiring -------------------------------------------------------------------------------------------------------

  function bind() {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        showError("signin-error", "Paste your reviewer token.");
        $("token").focus();
        return;
      }
      act(() => signIn(token, false));
    });
    $("sign-out").addEventListener("click", () => act(signOut));
    $("show-help").addEventListener("click", () => toggleHelp());
    $("close-help").addEventListener("click", () => $("help").close());

    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      readFilters();
      loadQueue();
    });
    $("filters").addEventListener("reset", () => {
      setTimeout(() => {
        readFilters();
        loadQueue();
      }, 0);
    });
    ["f-status", "f-tier", "f-reason", "f-model", "f-since", "f-until"].forEach((id) =>
      $(id).addEventListener("change", () => {
        readFilters();
        loadQueue();
      }),
    );
    $("refresh").addEventListener("click", () => loadQueue());
    $("load-more").addEventListener("click", () => loadQueue(true));
    $("claim-next").addEventListener("click", () => act(claimNext));
    $("queue-rows").addEventListener("click", (event) => {
      const row = event.target.closest("tr.queue-row");
      if (!row) return;
      state.selected = Number(row.dataset.index);
      const entry = state.queue[state.selected];
      if (entry) act(() => openItem(entry.id));
    });
    $("queue-rows").addEventListener("focusin", (event) => {
      const row = event.target.closest("tr.queue-row");
      if (row) selectRow(Number(row.dataset.index), false);
    });

    $("back").addEventListener("click", () => act(backToQueue));
    $("prev-item").addEventListener("click", () => act(() => moveBy(-1)));
    $("next-item").addEventListener("click", () => act(() => moveBy(1)));
    $("decision").addEventListener("submit", (event) => event.preventDefault());
    $("approve").addEventListener("click", () => act(() => decide("approve")));
    $("reject").addEventListener("click", () => act(() => decide("reject")));
    $("correct").addEventListener("click", () => act(() => decide("correct")));
    $("thumbs-up").addEventListener("click", () => setThumbs(state.thumbs === "up" ? null : "up"));
    $("thumbs-down").addEventListener("click", () => setThumbs(state.thumbs === "down" ? null : "down"));
    $("release").addEventListener("click", () => act(release));
    $("claim").addEventListener("click", () => state.item && act(() => openItem(state.item.id)));
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", () => {
      const linked = /^#item=(\d+)$/.exec(location.hash);
      if (linked && state.me && (!state.item || state.item.id !== Number(linked[1]))) {
        act(() => openItem(Number(linked[1])));
      }
    });
  }

  function start() {
    bind();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) {
      act(() => signIn(token, true));
    } else {
      show("signin");
      $("token").focus();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
