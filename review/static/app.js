// The reviewers' page of the spanguard review service: sign in with a token, work the queue, decide items.
//
// Everything an item holds comes from spans, which anyone with an ingest token can write: it is untrusted. It is
// put on the page only as text (textContent, createTextNode) or through attributes that cannot run code (class
// names from fixed lists, title, numbers); never through innerHTML. The page is served with a strict CSP (no inline
// script or style), so nothing here sets style attributes either: looks change through classes.
"use strict";

(() => {
  const TOKEN_KEY = "spanguard.review.token";
  const MODE_KEY = "spanguard.review.queue"; // the queue's mode, for a reload of the tab on another view
  // The queue's modes: "" what is reviewed (no kind), "trace" every trace, "session" the session items.
  const MODES = new Set(["", "trace", "session"]);
  const QUEUE_LINK = /^#queue=(trace|session)s$/;
  const SESSION_LINK = /^#session=(.{1,1000})$/;
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
    mode: "",
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

  /** A label and its values (text or nodes) in a <dl> of meta fields. */
  function metaField(meta, label, values) {
    const group = el("div", "meta-field");
    group.appendChild(el("dt", null, label));
    const dd = el("dd");
    values.forEach((value) => dd.appendChild(typeof value === "string" ? document.createTextNode(value) : value));
    group.appendChild(dd);
    meta.appendChild(group);
  }

  function chip(text, className) {
    return el("span", `chip${className ? ` ${className}` : ""}`, text);
  }

  /** A risk reason's chip, its meaning (the rule's reason, the detector's explanation) as its tooltip. */
  function reasonChip(reason, texts) {
    const box = chip(reason);
    const meaning = texts && typeof texts[reason] === "string" ? texts[reason] : "";
    if (meaning && meaning !== reason) box.title = meaning;
    return box;
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
  let flashCarry = 0; // view changes the message survives: 1 when it reports what leads to the next view

  /** A message above the page until the view changes (``carry``: until the view after the next one). */
  function flash(message, kind = "ok", { carry = false } = {}) {
    const box = $("flash");
    box.textContent = message;
    box.className = `flash flash-${kind === "error" ? "error" : "ok"}`;
    box.hidden = false;
    flashCarry = carry ? 1 : 0;
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

  /** The API's JSON answer (or, with `raw`, the successful Response itself, for a download). */
  async function api(method, path, body, signal, raw) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${state.token}` };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (signal) init.signal = signal; // a long poll the page stops waiting for
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
    if (raw && response.ok) return response;
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
    if (view !== state.view) {
      if (flashCarry > 0) flashCarry -= 1;
      else $("flash").hidden = true;
    }
    state.view = view;
    $("signin-view").hidden = view !== "signin";
    $("queue-view").hidden = view !== "queue";
    $("item-view").hidden = view !== "item";
    $("approvals-view").hidden = view !== "approvals";
    $("approval-view").hidden = view !== "approval";
    $("datasets-view").hidden = view !== "datasets";
    $("dataset-view").hidden = view !== "dataset";
    $("sessionpage-view").hidden = view !== "session";
    $("session").hidden = view === "signin";
    $("tabs").hidden = view === "signin";
    const onApprovals = view === "approvals" || view === "approval";
    const onDatasets = view === "datasets" || view === "dataset";
    $("tab-queue").setAttribute("aria-current", onApprovals || onDatasets ? "false" : "page");
    $("tab-approvals").setAttribute("aria-current", onApprovals ? "page" : "false");
    $("tab-datasets").setAttribute("aria-current", onDatasets ? "page" : "false");
    if (onDatasets) $("flash").hidden = true; // a message of another view would cover this one's title
    document.title = view === "item" && state.item ? `#${state.item.id} – spanguard review` : "spanguard review";
    if (view === "approval" && approvals.current) document.title = `${approvals.current.action} – spanguard review`;
    if (view === "dataset" && datasets.current) document.title = `${datasets.current} – spanguard review`;
    if (view === "session" && sessionPage.current) {
      document.title = `session ${sessionPage.current.conversation_id || ""} – spanguard review`;
    }
    if (view === "item" && state.item && state.item.kind === "session") {
      document.title = `session #${state.item.id} – spanguard review`;
    }
    approvalsShown(onApprovals);
    // The sign-in view keeps an #item= link, so that it opens once signed in.
    if (view === "queue" && location.hash !== queueHash()) {
      history.replaceState(null, "", location.pathname + location.search + queueHash());
    }
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
    const approvalLink = APPROVAL_LINK.exec(location.hash);
    const datasetLink = linkedDataset();
    const queueLink = QUEUE_LINK.exec(location.hash);
    const sessionLink = linkedSession();
    setMode(queueLink ? queueLink[1] : sessionStorage.getItem(MODE_KEY) || "");
    if (linked) {
      await loadQueue();
      await openItem(Number(linked[1]));
    } else if (sessionLink !== null) {
      await loadQueue();
      await toSessionPage(sessionLink);
    } else if (approvalLink || location.hash === "#approvals") {
      await showApprovals(approvalLink ? decodeURIComponent(approvalLink[1]) : null);
    } else if (datasetLink || location.hash === "#datasets") {
      await toDatasets(datasetLink);
    } else {
      show("queue");
      await loadQueue();
      focusSelectedRow();
    }
    if (!restoring) flash(`Signed in as ${me.name}.`);
  }

  function forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    setMode("");
    sessionPage.current = null;
    sessionPage.from = null;
    state.token = null;
    state.me = null;
    state.item = null;
    state.held = false;
    state.claimedHere = false;
    state.queue = [];
    forgetApprovals();
    datasets.list = [];
    datasets.cases = [];
    datasets.current = null;
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
    if (state.mode) params.set("kind", state.mode);
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
      const what = item.kind === "session" ? "Session item" : "Item";
      row.setAttribute("aria-label", `${what} ${item.id}, ${item.risk_tier} risk, ${item.tier}, ${item.status}`);
      if (item.kind === "session") row.classList.add("session-row");
      if (index === state.selected) row.classList.add("selected");

      row.appendChild(el("td", "num", `#${item.id}`));
      const risk = el("td");
      risk.appendChild(riskBadge(item.risk_tier));
      row.appendChild(risk);
      const tier = el("td");
      tier.appendChild(tierBadge(item.tier));
      row.appendChild(tier);
      // A cell holds a block of chips: a flex cell would not stretch to the row's height and break its borders.
      const reasons = el("td", "reasons");
      const reasonChips = el("div", "chips");
      (item.reasons || []).forEach((reason) => reasonChips.appendChild(reasonChip(reason, item.reason_texts)));
      reasons.appendChild(reasonChips);
      row.appendChild(reasons);
      row.appendChild(el("td", "models", (item.models || []).join(", ")));
      row.appendChild(sessionCell(item));
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

  /** The queue's Session column: a session item's conversation, traces and what it follows; a trace's session. */
  function sessionCell(item) {
    const cell = el("td", "session-cell");
    const line = (...nodes) => {
      const div = el("div", "session-line");
      nodes.forEach((node) => div.appendChild(typeof node === "string" ? document.createTextNode(node) : node));
      cell.appendChild(div);
    };
    const conversation = () => {
      const code = el("code", "conversation-id", item.conversation_id);
      code.title = String(item.conversation_id);
      return code;
    };
    if (item.kind === "session") {
      const count = Number(item.traces);
      const traces = Number.isInteger(count) ? ` ${count} trace${count === 1 ? "" : "s"}` : "";
      line(el("span", "badge kind-session", "session"), el("span", "trace-count", traces));
      if (item.conversation_id) line(conversation());
      if (itemId(item.follows_id)) line(el("span", "follow-up", `follow-up of #${itemId(item.follows_id)}`));
    } else {
      if (item.conversation_id) line(conversation());
      if (itemId(item.session_item_id)) {
        line(el("span", "in-session", `in session #${itemId(item.session_item_id)}`));
      }
    }
    if (!cell.firstChild) cell.textContent = "–";
    return cell;
  }

  /** A review item id from the API (a positive integer), else null. */
  function itemId(value) {
    return Number.isInteger(value) && value > 0 ? value : null;
  }

  /** Switches the queue's mode (not its rows: the caller loads them); kept in the tab for a reload. */
  function setMode(mode) {
    state.mode = MODES.has(mode) ? mode : "";
    if (state.mode) sessionStorage.setItem(MODE_KEY, state.mode);
    else sessionStorage.removeItem(MODE_KEY);
    document.querySelectorAll("#queue-mode button.mode").forEach((button) => {
      button.setAttribute("aria-pressed", button.dataset.mode === state.mode ? "true" : "false");
    });
    state.selected = 0;
  }

  function queueHash() {
    return state.mode ? `#queue=${state.mode}s` : "";
  }

  async function switchMode(mode) {
    if (!state.me) return;
    setMode(mode);
    if (state.view !== "queue") {
      await backToQueue();
      return;
    }
    show("queue");
    await loadQueue();
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
    selectIn(rows(), state, index, focus);
  }

  /** Marks row `index` of `all` selected (in `holder.selected`), scrolled into view and, with `focus`, focused. */
  function selectIn(all, holder, index, focus) {
    if (!all.length) return;
    holder.selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === holder.selected));
    const row = all[holder.selected];
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
    let known = state.queue.find((entry) => entry.id === id);
    // A trace of the Traces queue that is reviewed within a session item is reviewed there: that item opens.
    if (known && known.kind !== "session" && itemId(known.session_item_id)) {
      id = itemId(known.session_item_id);
      known = state.queue.find((entry) => entry.id === id);
    }
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
      flash(`Released item #${item.id}; it is ${summary.status} again.`, "ok", { carry: true });
    } catch (error) {
      report(error, "decision-error");
      return;
    }
    await backToQueue();
  }

  async function moveBy(step) {
    if (!state.queue.length) return;
    const current = state.item ? queuePosition(state.item) : state.selected;
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
    const session = item.kind === "session" && isObject(item.session) ? item.session : null;
    const traces = session ? traceIndex(Array.isArray(session.traces) ? session.traces : []) : null;
    // A session item's trace_id is a key of its own, no trace's: it is neither shown nor linked.
    if (item.kind === "session") {
      title.appendChild(document.createTextNode(`Session item #${item.id} · conversation `));
      title.appendChild(el("code", "conversation-id", item.conversation_id || "?"));
    } else {
      title.appendChild(document.createTextNode(`Item #${item.id} · trace `));
    }
    const trace = el("code", "trace-id", item.trace_id);
    const url = item.kind === "session" ? null : safeHttpUrl(item.trace_url);
    if (url) {
      const link = el("a", "trace-link");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.appendChild(trace);
      link.appendChild(document.createTextNode(" ↗"));
      link.title = "open the trace in the tracing backend";
      title.appendChild(link);
    } else if (item.kind !== "session") {
      title.appendChild(trace);
    }

    const meta = $("item-meta");
    clear(meta);
    const field = (label, ...values) => metaField(meta, label, values);
    field("Tier", tierBadge(item.tier));
    field("Risk", riskBadge(item.risk_tier));
    const reasons = el("ul", "reason-list");
    (item.reasons || []).forEach((reason) => {
      const line = el("li");
      line.appendChild(reasonChip(reason, item.reason_texts));
      const meaning = (item.reason_texts || {})[reason];
      if (meaning && meaning !== reason) line.appendChild(el("span", "reason-text", ` ${meaning}`));
      reasons.appendChild(line);
    });
    if (!(item.reasons || []).length) reasons.textContent = "–";
    field("Reasons", reasons);
    field("Models", (conversation.models || item.models || []).join(", ") || "–");
    if ((conversation.providers || []).length) field("Provider", conversation.providers.join(", "));
    if (typeof conversation.started_at_unix_nano === "number") {
      field("Started", new Date(conversation.started_at_unix_nano / 1e6).toLocaleString());
    }
    field("Duration", formatMs(conversation.duration_ms));
    field("Spans", String(item.kind === "session" ? (conversation.spans || []).length : item.spans));
    if (item.user_id) field("User", el("code", "user-id", item.user_id));
    if (traces) {
      const all = [...traces.values()];
      const here = all.filter((info) => info.member).length;
      const before = all.length - here;
      field("Traces", `${here} reviewed here${before ? `, ${before} already reviewed` : ""}`);
    }
    if (itemId(item.follows_id)) field("Follow-up of", itemLink(itemId(item.follows_id), "session item"));
    if (item.kind !== "session" && (itemId(item.session_item_id) || item.conversation_id)) {
      field("Session", ...sessionLinkOf(item));
    }
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
      } else if (item.kind !== "session" && itemId(item.session_item_id)) {
        message = `Read-only: this trace is reviewed within session item #${itemId(item.session_item_id)}.`;
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

    renderThread(conversation.turns || [], $("thread"), traces);
    const earlier = session && Array.isArray(session.earlier) ? session.earlier.filter(isObject) : [];
    renderList("earlier", "earlier-section", earlier, renderEarlier);
    renderTimeline($("timeline"), $("timeline-section"), traces ? conversation.tool_calls || [] : [], traces);
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
    resetDatasetForm(item);

    const position = queuePosition(item);
    $("item-position").textContent = position >= 0 ? `${position + 1} of ${state.queue.length}` : "";
    $("prev-item").disabled = position <= 0;
    $("next-item").disabled = position < 0 || position >= state.queue.length - 1;
  }

  /** Where the item is in the queue: its row, or (Traces queue) the selected trace's row it is reviewed within. */
  function queuePosition(item) {
    const direct = state.queue.findIndex((entry) => entry.id === item.id);
    if (direct >= 0) return direct;
    const picked = state.queue[state.selected];
    return picked && itemId(picked.session_item_id) === item.id ? state.selected : -1;
  }

  /** A link that opens review item `id` (by the #item= hash the page already follows). */
  function itemLink(id, what) {
    const link = el("a", "item-link", `${what} #${id}`);
    link.href = `#item=${id}`;
    return link;
  }

  /** From a trace item: its session item, else the read-only session of its conversation. */
  function sessionLinkOf(item) {
    const nodes = [];
    if (itemId(item.session_item_id)) {
      nodes.push("reviewed in ", itemLink(itemId(item.session_item_id), "session item"));
    } else {
      const link = el("a", "session-link", "open the session");
      link.href = `#session=${encodeURIComponent(item.conversation_id)}`;
      nodes.push(link);
    }
    if (item.conversation_id) nodes.push(" · ", el("code", "conversation-id", item.conversation_id));
    return nodes;
  }

  /**
   * The traces of a session by trace id, each with its place (index of count) and what the API says of it: tier,
   * risk_tier, reasons, status, outcome, and for a session item, member (reviewed by it) and reviewed_in.
   */
  function traceIndex(list) {
    const traces = new Map();
    const shown = list.filter((t) => isObject(t) && typeof t.trace_id === "string");
    shown.forEach((t, index) => traces.set(t.trace_id, { ...t, index: index + 1, count: shown.length }));
    return traces;
  }

  function traceName(info) {
    return `Trace ${info.index} of ${info.count}`;
  }

  /** How a trace of a session is reviewed, as a text node or a link to the session item reviewing it. */
  function traceState(info) {
    const box = el("span", "trace-state");
    const outcome = info.status === "done" ? OUTCOME_WORDS[info.outcome] || info.outcome || "done" : info.status;
    const within = itemId(info.reviewed_in !== undefined ? info.reviewed_in : info.session_item_id);
    if (info.member === true) {
      box.textContent = "reviewed here";
      return box;
    }
    if (info.member === false) box.classList.add("already-reviewed");
    const done = info.status === "done";
    box.appendChild(document.createTextNode(info.member === false && done ? "already reviewed " : "reviewed "));
    if (within) {
      box.appendChild(document.createTextNode("in "));
      box.appendChild(itemLink(within, "session item"));
    } else {
      box.appendChild(document.createTextNode("on its own"));
    }
    box.appendChild(document.createTextNode(`: ${outcome}`));
    return box;
  }

  /** The divider before the first turn of a trace: its place, tier, risk, reasons and how it is reviewed. */
  function traceBoundary(info, traceId) {
    const box = el("div", `trace-boundary${info && info.member === false ? " boundary-reviewed" : ""}`);
    box.dataset.trace = traceId;
    if (!info) {
      box.appendChild(el("span", "boundary-label", "Trace "));
      box.appendChild(el("code", "trace-id", traceId));
      return box;
    }
    const label = el("span", "boundary-label", traceName(info));
    label.title = `trace ${traceId}`;
    box.appendChild(label);
    box.appendChild(tierBadge(info.tier));
    box.appendChild(riskBadge(info.risk_tier));
    const reasons = el("span", "chips");
    (Array.isArray(info.reasons) ? info.reasons : []).forEach((reason) => reasons.appendChild(chip(reason)));
    box.appendChild(reasons);
    box.appendChild(traceState(info));
    return box;
  }

  function renderEarlier(entry) {
    const li = el("li", "earlier-item");
    const id = itemId(entry.id);
    if (id) li.appendChild(itemLink(id, "Session item"));
    li.appendChild(tierBadge(entry.tier));
    li.appendChild(riskBadge(entry.risk_tier));
    const count = Number(entry.traces);
    if (Number.isInteger(count)) li.appendChild(el("span", "muted", `${count} trace${count === 1 ? "" : "s"}`));
    li.appendChild(statusText(entry));
    li.appendChild(el("span", "muted", formatTime(entry.created_at)));
    return li;
  }

  /** The tool calls of a session in time order, each with the trace it was made in. */
  function renderTimeline(list, section, calls, traces) {
    clear(list);
    calls.forEach((call) => {
      if (!isObject(call)) return;
      const li = el("li", `timeline-call${call.status === "error" ? " row-error" : ""}`);
      const head = el("div", "timeline-head");
      const info = traces && typeof call.trace_id === "string" ? traces.get(call.trace_id) : null;
      head.appendChild(el("span", "timeline-trace", info ? `Trace ${info.index}` : "Trace ?"));
      head.appendChild(el("code", "tool-name", call.name || "(unnamed tool)"));
      const status = call.executed ? call.status : "requested, no tool span";
      head.appendChild(el("span", "muted", ` · ${status} · ${formatMs(call.duration_ms)}`));
      li.appendChild(head);
      if (call.arguments !== null && call.arguments !== undefined) {
        li.appendChild(appendMarked(el("pre", "arguments"), pretty(call.arguments)));
      }
      list.appendChild(li);
    });
    section.hidden = list.childElementCount === 0;
  }

  function renderList(listId, sectionId, values, render) {
    const list = $(listId);
    clear(list);
    values.forEach((value) => list.appendChild(render(value)));
    $(sectionId).hidden = values.length === 0;
  }

  /**
   * The turns of a conversation; with `traces` (of traceIndex), a divider each time the turn's trace changes, and
   * the turns of a trace this item does not review (member false) dimmed.
   */
  function renderThread(turns, thread = $("thread"), traces = null) {
    clear(thread);
    const toolNames = new Map();
    turns.forEach((turn) => {
      (turn.tool_calls || []).forEach((call) => {
        if (call && call.id) toolNames.set(call.id, call.name);
      });
    });
    if (!turns.length) thread.appendChild(el("p", "muted", "No conversation was recorded for this trace."));
    let current = null;
    turns.forEach((turn) => {
      if (traces && typeof turn.trace_id === "string" && turn.trace_id !== current) {
        current = turn.trace_id;
        thread.appendChild(traceBoundary(traces.get(current), current));
      }
      const node = renderTurn(turn, toolNames);
      const info = traces && current ? traces.get(current) : null;
      if (info && info.member === false) node.classList.add("turn-reviewed");
      thread.appendChild(node);
    });
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
    const within = item.kind !== "session" && itemId(item.session_item_id); // claimed only through its session item
    $("claim").hidden = enabled || within || !(item.status === "pending" || item.status === "expired");
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
      const description = (item.checklist_descriptions || {})[name];
      if (typeof description === "string" && description) {
        const text = el("span", "check-description", description);
        text.id = `check-${index}-description`;
        label.appendChild(text);
        row.setAttribute("aria-describedby", text.id);
      }
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

    resetTurnChoice(item);
    state.originalAnswer = answerOf(turns, $("correct-turn-box").hidden ? null : $("correct-turn").value);
    $("correction").value = item.golden || state.originalAnswer;
  }

  /** The model's last answer: of the trace `traceId` when given (a session item's turn), else of the conversation. */
  function answerOf(turns, traceId) {
    const answers = turns.filter(
      (turn) =>
        turn.role === "assistant" && typeof turn.content === "string" && (!traceId || turn.trace_id === traceId),
    );
    const last = [...answers].reverse().find((turn) => turn.content.trim()) || answers[answers.length - 1];
    return last ? last.content : "";
  }

  /** A session item's correction names its turn: one of the traces the item reviews, the latest by default. */
  function resetTurnChoice(item) {
    const select = $("correct-turn");
    clear(select);
    const session = item.kind === "session" && isObject(item.session) ? item.session : null;
    const traces = session ? [...traceIndex(Array.isArray(session.traces) ? session.traces : []).values()] : [];
    const members = traces.filter((info) => info.member);
    members.forEach((info) => {
      const option = document.createElement("option");
      option.value = info.trace_id;
      option.textContent = `${traceName(info)} · ${info.tier} · ${info.risk_tier}`;
      select.appendChild(option);
    });
    if (members.length) select.value = members[members.length - 1].trace_id;
    $("correct-turn-box").hidden = members.length === 0;
  }

  /** Another turn chosen: its answer replaces the golden answer's draft, unless the reviewer edited the draft. */
  function onTurnChoice() {
    const item = state.item;
    if (!item) return;
    const turns = isObject(item.conversation) && Array.isArray(item.conversation.turns) ? item.conversation.turns : [];
    const unedited = $("correction").value === state.originalAnswer;
    state.originalAnswer = answerOf(turns, $("correct-turn").value);
    if (unedited) $("correction").value = state.originalAnswer;
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
      if (!$("correct-turn-box").hidden && $("correct-turn").value) body.turn = $("correct-turn").value;
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
    const what = item.kind === "session" ? "Session item" : "Item";
    let message = `${what} #${item.id} ${OUTCOME_WORDS[outcome]}: now ${updated.status}`;
    if (updated.status === "done" && updated.outcome) message += ` (${updated.outcome})`;
    if (updated.tier === "dual_approval" && updated.status !== "done" && outcome === "approve") {
      message += `, ${(updated.approvals || []).length} of 2 approvals`;
    }
    flash(`${message}.`, "ok", { carry: true });
    if (updated.kind === "session" && updated.status === "done") {
      // Its traces are done with it: the Traces queue's copies say so, so that the page does not move on to them.
      state.queue.forEach((entry) => {
        if (itemId(entry.session_item_id) !== updated.id) return;
        Object.assign(entry, { status: "done", outcome: updated.outcome });
      });
    }
    const index = remember(updated);
    await advance(index >= 0 ? index : queuePosition(updated));
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

  // -- a session of traces, read-only ------------------------------------------------------------------------------
  //
  // From a trace item whose conversation has no session item: GET /v1/sessions/{conversation_id}, every trace with
  // the conversation of its own spans, shown one after the other under its boundary, by the item view's renderer.

  const sessionPage = {
    current: null, // the SessionPage shown
    from: null, // the item it was opened from (Back and Esc return to it)
  };

  /** The conversation id of a #session= link, or null. */
  function linkedSession() {
    const link = SESSION_LINK.exec(location.hash);
    if (!link) return null;
    try {
      return decodeURIComponent(link[1]);
    } catch (_) {
      return null; // a malformed escape: not a link this page made
    }
  }

  async function toSessionPage(conversationId) {
    if (!state.me) return;
    const path = `/v1/sessions/${encodeURIComponent(conversationId)}`;
    let page;
    setBusy(true);
    try {
      page = await api("GET", path); // before leaving the item: a session that cannot be opened keeps its lease
    } catch (error) {
      report(error);
      // Where the page stays, its link stays too.
      if (state.view === "item" && state.item) history.replaceState(null, "", `#item=${state.item.id}`);
      else if (state.view === "session" && sessionPage.current) {
        history.replaceState(null, "", `#session=${encodeURIComponent(sessionPage.current.conversation_id || "")}`);
      } else if (state.me) show("queue");
      return;
    } finally {
      setBusy(false);
    }
    const from = state.item ? state.item.id : null;
    const releasing = !!state.item && state.claimedHere && !state.decided;
    await leaveItem();
    if (!state.me) return;
    if (releasing) {
      try {
        page = await api("GET", path); // the session as it is now, with the item given back
      } catch (_) {
        // The first answer stands (a 401 already went back to sign-in).
      }
      if (!state.me) return;
    }
    if (from) sessionPage.from = from;
    state.item = null;
    sessionPage.current = page;
    renderSessionPage(page);
    show("session");
    history.replaceState(null, "", `#session=${encodeURIComponent(conversationId)}`);
    $("sessionpage-title").focus();
  }

  async function backFromSessionPage() {
    const from = sessionPage.from;
    sessionPage.current = null;
    sessionPage.from = null;
    if (from) await openItem(from);
    else await backToQueue();
  }

  function renderSessionPage(page) {
    const title = $("sessionpage-title");
    clear(title);
    title.appendChild(document.createTextNode("Session · conversation "));
    title.appendChild(el("code", "conversation-id", page.conversation_id || page.key));

    const meta = $("sessionpage-meta");
    clear(meta);
    const field = (label, ...values) => metaField(meta, label, values);
    field("Tier", tierBadge(page.tier));
    field("Risk", riskBadge(page.risk_tier));
    const reasons = el("span", "chips");
    (page.reasons || []).forEach((reason) => reasons.appendChild(chip(reason)));
    if (!(page.reasons || []).length) reasons.textContent = "–";
    field("Reasons", reasons);
    field("Models", (page.models || []).join(", ") || "–");
    if (page.user_id) field("User", el("code", "user-id", page.user_id));
    field("Traces", String(Number(page.turns) || 0));
    field("Duration", typeof page.duration_s === "number" ? formatMs(page.duration_s * 1000) : "–");
    const reviews = (Array.isArray(page.reviews) ? page.reviews : []).filter((r) => isObject(r) && itemId(r.item_id));
    if (reviews.length) {
      const links = el("span", "chips");
      reviews.forEach((review) => links.appendChild(itemLink(itemId(review.item_id), "session item")));
      field("Session items", links);
    }
    field("First", formatTime(page.first_at));
    field("Last", formatTime(page.last_at));

    const list = (Array.isArray(page.traces) ? page.traces : []).filter(isObject);
    const traces = traceIndex(list);
    const conversationOf = (trace) => (isObject(trace.conversation) ? trace.conversation : {});
    const turns = [];
    const calls = [];
    list.forEach((trace) => {
      const conversation = conversationOf(trace);
      (Array.isArray(conversation.turns) ? conversation.turns : []).forEach((turn) => {
        if (isObject(turn)) turns.push({ ...turn, trace_id: trace.trace_id });
      });
      (Array.isArray(conversation.tool_calls) ? conversation.tool_calls : []).forEach((call) => {
        if (isObject(call)) calls.push({ ...call, trace_id: trace.trace_id });
      });
    });
    renderThread(turns, $("sessionpage-thread"), traces);
    renderTimeline($("sessionpage-timeline"), $("sessionpage-timeline-section"), calls, traces);
  }

  // -- approval requests (agents' gated actions) ------------------------------------------------------------------
  //
  // An agent's gate waits for one of these (docs/gates.md, "The approvals API"). The action's arguments and the
  // agent's state come from the agent, redacted but untrusted like span content: text only, as above. Countdowns are
  // the server's deadlines against this computer's clock, so a clock that is off shifts them by as much.

  const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;
  const APPROVAL_LINK = /^#approval=(apr_[A-Za-z0-9_-]{1,64})$/;
  const APPROVAL_STATUSES = new Set(["pending", "approved", "rejected", "modified", "timed_out"]);
  const APPROVAL_WORDS = { approve: "approved", reject: "rejected", modify: "modified" };
  const APPROVAL_PAGE = 100;
  const REFRESH_MS = 15000; // the list (or the open request) is re-read this often, for new requests and escalations
  const DUE_REREAD_MS = 5000; // a deadline passed here: re-read until the server's timer has acted on it
  const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
  const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
  // A reason that is a risk code (`rule:payment-tool`, `unpinned_model`) rather than the policy's sentence.
  const RISK_CODE = /^[a-z][a-z0-9_]*(:[A-Za-z0-9_.-]+)?$/;
  const ABSENT = Symbol("absent");

  const approvals = {
    list: [],
    status: "pending",
    hasMore: false,
    selected: 0,
    request: 0, // only the latest list request's answer is shown
    current: null, // the open request
    base: null, // the arguments a decision approves now: the request's, or the ones a reviewer modified
    fields: [], // the argument form: [{key, kind, input, error}]
    clocks: [], // countdowns on the page: [{node, request, kind}]
    due: new Map(), // "id kind" -> when this page last re-read a request whose deadline it saw pass
    ticker: null,
    refresher: null,
    watch: null, // the AbortController of the open request's long poll
  };

  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const idOf = (value) => (typeof value === "string" || typeof value === "number" ? String(value) : null);

  function forgetApprovals() {
    stopWatching();
    if (approvals.refresher) clearInterval(approvals.refresher);
    approvals.refresher = null;
    approvals.list = [];
    approvals.current = null;
    approvals.due.clear();
    $("approvals-count").hidden = true;
  }

  /** Called by show(): countdowns tick only while an approvals view is on screen; the periodic re-read always runs. */
  function approvalsShown(on) {
    if (on && !approvals.ticker) approvals.ticker = setInterval(tick, 1000);
    if (!on && approvals.ticker) {
      clearInterval(approvals.ticker);
      approvals.ticker = null;
    }
    if (on) $("flash").hidden = true; // a message of another view would cover this one's title
    if (!on || state.view !== "approval") stopWatching();
    if (state.me && !approvals.refresher) approvals.refresher = setInterval(refreshQuietly, REFRESH_MS);
  }

  // -- countdowns

  function clockText(ms) {
    const total = Math.floor(ms / 1000);
    const two = (n) => String(n).padStart(2, "0");
    const days = Math.floor(total / 86400);
    const hours = Math.floor((total % 86400) / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    if (days) return `${days} d ${hours} h ${two(minutes)} min`;
    if (hours) return `${hours}:${two(minutes)}:${two(total % 60)}`;
    return `${minutes}:${two(total % 60)}`;
  }

  /** What the countdown to a request's soft or hard deadline says at `now`: [text, class, due]. */
  function countdown(request, kind, now) {
    const pending = request.status === "pending";
    if (kind === "soft" && request.escalated_at) return [`escalated ${age(request.escalated_at)} ago`, "escalated", false];
    if (!pending) return [request.status === "timed_out" && kind === "hard" ? "timed out" : "–", "off", false];
    const deadline = Date.parse(kind === "soft" ? request.soft_deadline : request.hard_deadline);
    if (isNaN(deadline)) return ["?", "off", false];
    const left = deadline - now;
    const verb = kind === "soft" ? "escalates" : request.on_hard_timeout === "proceed" ? "proceeds" : "denied";
    if (left <= 0) return [kind === "soft" ? "escalating now" : "timing out now", "due", true];
    return [`${verb} in ${clockText(left)}`, left < 60000 ? "soon" : "", false];
  }

  function countdownNode(request, kind) {
    const node = el("span", "countdown");
    const deadline = kind === "soft" ? request.soft_deadline : request.hard_deadline;
    node.title = `${kind} deadline ${formatTime(deadline)} (the server's time, counted down with this computer's clock)`;
    approvals.clocks.push({ node, request, kind });
    setCountdown(node, request, kind, Date.now());
    return node;
  }

  function setCountdown(node, request, kind, now) {
    if (kind === "age") {
      const text = age(request.created_at);
      if (node.textContent !== text) node.textContent = text;
      return false;
    }
    const [text, className, due] = countdown(request, kind, now);
    if (node.textContent !== text) node.textContent = text;
    node.className = `countdown${className ? ` countdown-${className}` : ""}`;
    return due;
  }

  function tick() {
    const now = Date.now();
    approvals.clocks = approvals.clocks.filter((clock) => clock.node.isConnected);
    let reread = false;
    approvals.clocks.forEach(({ node, request, kind }) => {
      if (!setCountdown(node, request, kind, now)) return;
      // The deadline passed here: the server's timer escalates (or times out) the request soon; re-read it.
      const key = `${request.id} ${kind}`;
      if (now - (approvals.due.get(key) || 0) >= DUE_REREAD_MS) {
        approvals.due.set(key, now);
        reread = true;
      }
    });
    if (reread) refreshQuietly();
  }

  // -- the list

  function approvalsQuery(offset) {
    const params = new URLSearchParams();
    if (approvals.status) params.set("status", approvals.status);
    params.set("limit", String(APPROVAL_PAGE));
    params.set("offset", String(offset));
    return `/v1/approvals?${params}`;
  }

  /** Pending first (the service puts escalated ones on top), then the rest, each in the service's order. */
  function pendingFirst(list) {
    const rank = (r) => (r.status === "pending" ? (r.escalated_at ? 0 : 1) : 2);
    return list
      .map((request, index) => [request, index])
      .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
      .map(([request]) => request);
  }

  async function loadApprovals(append, quiet) {
    if (!quiet) showError("approvals-error", "");
    const request = ++approvals.request;
    let data;
    try {
      data = await api("GET", approvalsQuery(append ? approvals.list.length : 0));
    } catch (error) {
      if (request === approvals.request && !quiet) report(error, "approvals-error");
      return;
    }
    if (request !== approvals.request) return;
    const found = Array.isArray(data && data.items) ? data.items.filter(isObject) : [];
    const selectedId = approvals.list[approvals.selected] && approvals.list[approvals.selected].id;
    approvals.list = pendingFirst(append ? approvals.list.concat(found) : found);
    approvals.hasMore = found.length === APPROVAL_PAGE;
    const kept = approvals.list.findIndex((r) => r.id === selectedId);
    approvals.selected = kept >= 0 ? kept : Math.min(approvals.selected, Math.max(0, approvals.list.length - 1));
    if (approvals.status === "pending") setPendingCount(approvals.list.length, approvals.hasMore);
    if (state.view === "approvals") renderApprovals();
  }

  function setPendingCount(count, more) {
    const badge = $("approvals-count");
    badge.textContent = `${count}${more ? "+" : ""}`;
    badge.title = `${badge.textContent} pending`;
    badge.hidden = count === 0;
  }

  async function loadPendingCount() {
    try {
      const data = await api("GET", `/v1/approvals?status=pending&limit=${APPROVAL_PAGE}`);
      const found = Array.isArray(data && data.items) ? data.items : [];
      setPendingCount(found.length, found.length === APPROVAL_PAGE);
    } catch (_) {
      // The count is a hint: the list says what went wrong when it is opened.
    }
  }

  function refreshQuietly() {
    if (!state.me || state.busy) return;
    if (state.view === "approvals") loadApprovals(false, true);
    else if (state.view === "approval") reloadCurrent();
    else loadPendingCount();
  }

  function renderApprovals() {
    const body = $("approvals-rows");
    const focused = document.activeElement && document.activeElement.closest("tr.approval-row");
    clear(body);
    approvals.clocks = [];
    approvals.list.forEach((request, index) => {
      const escalated = request.status === "pending" && !!request.escalated_at;
      const row = el("tr", `queue-row approval-row${escalated ? " escalated" : ""}`);
      row.tabIndex = 0;
      row.dataset.index = String(index);
      const label = `${request.action}, ${request.tier}, ${approvalStatusWord(request)}${escalated ? ", escalated" : ""}`;
      row.setAttribute("aria-label", label);
      if (index === approvals.selected) row.classList.add("selected");

      const action = el("td", "action-cell");
      action.appendChild(el("code", "action-name", request.action));
      if (escalated) action.appendChild(el("span", "badge escalated-badge", "escalated"));
      row.appendChild(action);
      const tier = el("td");
      tier.appendChild(riskBadge(request.tier));
      row.appendChild(tier);
      row.appendChild(el("td", "num", progressText(request)));
      const soft = el("td", "num");
      soft.appendChild(countdownNode(request, "soft"));
      row.appendChild(soft);
      const hard = el("td", "num");
      hard.appendChild(countdownNode(request, "hard"));
      row.appendChild(hard);
      const reasons = el("td");
      const reasonList = el("div", "reason-cell");
      (Array.isArray(request.reasons) ? request.reasons : []).forEach((reason) => {
        const line = el("div", "reason-line", reason);
        line.title = String(reason); // the whole sentence, where the cell cuts it
        reasonList.appendChild(line);
      });
      reasons.appendChild(reasonList);
      row.appendChild(reasons);
      const ageCell = el("td", "age", age(request.created_at));
      ageCell.title = formatTime(request.created_at);
      approvals.clocks.push({ node: ageCell, request, kind: "age" });
      row.appendChild(ageCell);
      const status = el("td");
      status.appendChild(approvalStatus(request));
      row.appendChild(status);
      body.appendChild(row);
    });
    $("approvals-empty").hidden = approvals.list.length > 0;
    $("approvals-table").hidden = approvals.list.length === 0;
    $("approvals-more").hidden = !approvals.hasMore;
    if (focused) focusApprovalRow();
  }

  function approvalRows() {
    return [...$("approvals-rows").querySelectorAll("tr.approval-row")];
  }

  function selectApprovalRow(index, focus) {
    selectIn(approvalRows(), approvals, index, focus);
  }

  function focusApprovalRow() {
    if (approvalRows().length) selectApprovalRow(approvals.selected, true);
    else $("approvals-title").focus();
  }

  function approvalStatusWord(request) {
    return request.status === "timed_out" ? "timed out" : String(request.status);
  }

  function approvalStatus(request) {
    const known = APPROVAL_STATUSES.has(request.status) ? request.status : "unknown";
    return el("span", `status approval-status-${known}`, approvalStatusWord(request));
  }

  function approversOf(request) {
    return Array.isArray(request.approvers) ? request.approvers.map(String) : [];
  }

  /** "1 of 2 approvals: alice". */
  function progressText(request) {
    const approvers = approversOf(request);
    const required = Number(request.approvals_required) || 1;
    const names = approvers.length ? `: ${approvers.join(", ")}` : "";
    return `${approvers.length} of ${required} approval${required === 1 ? "" : "s"}${names}`;
  }

  async function showApprovals(openId) {
    await loadApprovals();
    if (!state.me) return;
    if (openId) {
      await openApproval(openId);
      return;
    }
    approvals.current = null;
    show("approvals");
    renderApprovals();
    history.replaceState(null, "", "#approvals");
    focusApprovalRow();
    loadReport();
  }

  /** From any view: the approval requests (and request `id` of them, when given); an item left is given back. */
  async function toApprovals(id) {
    await leaveItem();
    if (!state.me) return;
    state.item = null;
    await showApprovals(id);
  }

  async function backToApprovals() {
    approvals.current = null;
    show("approvals");
    history.replaceState(null, "", "#approvals");
    renderApprovals();
    focusApprovalRow();
    await loadApprovals(false, true);
  }

  // -- one request

  async function openApproval(id) {
    let request;
    setBusy(true);
    try {
      request = await api("GET", `/v1/approvals/${encodeURIComponent(id)}`);
    } catch (error) {
      report(error, state.view === "approvals" ? "approvals-error" : state.view === "approval" ? "approval-error" : null);
      return;
    } finally {
      setBusy(false);
    }
    const index = rememberApproval(request);
    if (index >= 0) approvals.selected = index;
    approvals.current = request;
    showError("approval-error", "");
    $("approval-result").hidden = true;
    $("approval-reject-reason").value = "";
    $("approval-modify-reason").value = "";
    renderApproval(request, false);
    show("approval");
    history.replaceState(null, "", `#approval=${encodeURIComponent(request.id)}`);
    $("approval-title").focus();
    watchApproval(request.id);
  }

  function rememberApproval(request) {
    const index = approvals.list.findIndex((entry) => entry.id === request.id);
    if (index >= 0) approvals.list[index] = request;
    return index;
  }

  async function moveApproval(step) {
    const current = approvals.current ? approvals.list.findIndex((r) => r.id === approvals.current.id) : -1;
    const target = (current < 0 ? approvals.selected : current) + step;
    if (target < 0 || target >= approvals.list.length) {
      showError("approval-error", step > 0 ? "This is the last request of the list." : "This is the first request.");
      return;
    }
    approvals.selected = target;
    await openApproval(approvals.list[target].id);
  }

  /** Re-reads the open request (its deadline passed, or a decision may have come from elsewhere), keeping edits. */
  async function reloadCurrent() {
    const open = approvals.current;
    if (!open) return;
    let request;
    try {
      request = await api("GET", `/v1/approvals/${encodeURIComponent(open.id)}`);
    } catch (_) {
      return; // the next re-read tries again; a 401 already went back to sign-in
    }
    if (approvals.current && approvals.current.id === request.id) updateCurrent(request);
  }

  function updateCurrent(request) {
    rememberApproval(request);
    approvals.current = request;
    renderApproval(request, true);
  }

  function stopWatching() {
    if (approvals.watch) approvals.watch.abort();
    approvals.watch = null;
  }

  /** Long polls the open request while it is pending, so a decision made elsewhere (or a time-out) shows at once. */
  async function watchApproval(id) {
    stopWatching();
    const controller = new AbortController();
    approvals.watch = controller;
    const { signal } = controller;
    let failures = 0;
    while (!signal.aborted && state.me && approvals.current && approvals.current.id === id) {
      if (approvals.current.status !== "pending") return;
      let request;
      try {
        request = await api("GET", `/v1/approvals/${encodeURIComponent(id)}?wait=30`, undefined, signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted || (error.status >= 400 && error.status < 500)) return;
        failures += 1; // the service is down or restarting: wait longer each time, up to a minute
        await new Promise((resolve) => setTimeout(resolve, Math.min(60000, 2000 * 2 ** failures)));
        continue;
      }
      if (signal.aborted || !approvals.current || approvals.current.id !== id) return;
      if (request.status !== approvals.current.status || canonical(request) !== canonical(approvals.current)) {
        updateCurrent(request);
      }
    }
  }

  function renderApproval(request, keepEdits) {
    const me = state.me ? state.me.name : "";
    const approvers = approversOf(request);
    const required = Number(request.approvals_required) || 1;
    const pending = request.status === "pending";
    const escalated = pending && !!request.escalated_at;
    const model = isObject(request.state) ? request.state : {};
    approvals.clocks = [];

    const title = $("approval-title");
    clear(title);
    title.appendChild(el("code", "action-name", request.action));
    title.appendChild(document.createTextNode(" "));
    if (escalated) title.appendChild(el("span", "badge escalated-badge", "escalated"));
    title.appendChild(el("span", "muted approval-id", ` · ${request.id}`));

    const meta = $("approval-meta");
    clear(meta);
    const field = (label, ...values) => metaField(meta, label, values);
    field("Tier", riskBadge(request.tier));
    field("Status", approvalStatus(request));
    field("Approvals", progressText(request));
    field("Soft timeout", countdownNode(request, "soft"));
    field("Hard timeout", countdownNode(request, "hard")); // "denied in" or "proceeds in": what the time-out does
    field("Requested", formatTime(request.created_at));
    field("Models", (Array.isArray(model.models) ? model.models.map(String) : []).join(", ") || "–");
    field("Session", request.session_id ? el("code", null, request.session_id) : "–");
    if (request.trace_id) field("Trace", el("code", "trace-id", request.trace_id));
    if (request.digest) {
      const digest = el("code", "digest", `${String(request.digest).slice(0, 12)}…`);
      digest.title = `argument digest ${request.digest}: the approval is bound to these exact arguments`;
      field("Digest", digest);
    }

    // The banner: why this request is read-only, or what is left to do.
    let message = null;
    let readOnly = !pending;
    if (request.status === "timed_out") {
      const after = request.on_hard_timeout === "proceed" ? "the action may proceed" : "the action was denied";
      message = `Timed out: no person decided before the hard timeout, so ${after}.`;
    } else if (request.status === "rejected") {
      message = `Rejected${request.reason ? `: ${request.reason}` : "."}`;
    } else if (!pending) {
      message = `Decided: ${approvalStatusWord(request)}${approvers.length ? ` by ${approvers.join(", ")}` : ""}.`;
    } else if (approvers.includes(me)) {
      const left = Math.max(0, required - approvers.length);
      message = `You approved this request: ${left} more reviewer${left === 1 ? "" : "s"} must approve it (you may still modify or reject it).`;
      readOnly = false;
    } else if (escalated) {
      message = `Escalated ${age(request.escalated_at)} ago: nobody decided within the soft timeout.`;
    } else if (required > 1) {
      message = `${required} different reviewers must approve this request.`;
    }
    const banner = $("approval-banner");
    banner.textContent = message || "";
    banner.hidden = !message;
    banner.classList.toggle("banner-readonly", readOnly);
    banner.classList.toggle("banner-escalated", escalated && !approvers.includes(me));

    const reasons = $("approval-reasons");
    clear(reasons);
    const reasonList = Array.isArray(request.reasons) ? request.reasons : [];
    reasonList.forEach((reason) => {
      const li = el("li");
      if (typeof reason === "string" && RISK_CODE.test(reason)) {
        li.appendChild(chip(reason));
        li.appendChild(el("span", "muted", " (a risk code: this page has no text for it)"));
      } else {
        li.appendChild(el("span", "reason-text", reason));
      }
      reasons.appendChild(li);
    });
    if (!reasonList.length) reasons.appendChild(el("li", "muted", "No reason was given."));

    // The arguments a decision approves: a reviewer's modified ones once there are some.
    const base = isObject(request.decided_arguments) ? request.decided_arguments : request.arguments;
    const baseChanged = !approvals.base || canonical(base) !== canonical(approvals.base);
    if (!keepEdits || baseChanged) renderArgumentEditor(isObject(base) ? base : {});
    const note = $("approval-modified-note");
    clear(note);
    if (isObject(request.decided_arguments) && isObject(request.arguments)) {
      const changes = diffArguments(request.arguments, request.decided_arguments);
      const who = modifierOf(request);
      note.appendChild(document.createTextNode(`${who || "A reviewer"} modified the arguments: `));
      note.appendChild(el("span", "diff-inline", changes.map(changeText).join("; ") || "no change"));
    }
    note.hidden = !isObject(request.decided_arguments);
    if (keepEdits && baseChanged && approvals.current) {
      showError("approval-error", "Another reviewer modified the arguments meanwhile: your edits were replaced.");
    }
    setEditorEnabled(pending);

    const turns = messageTurns(Array.isArray(model.messages) ? model.messages : []);
    const thread = $("approval-thread");
    if (turns.length) renderThread(turns, thread);
    else {
      clear(thread);
      thread.appendChild(el("p", "muted", "The agent sent no messages with this request."));
    }
    renderList("approval-tools", "approval-tools-section", Array.isArray(model.tool_calls) ? model.tool_calls : [], renderToolRecord);
    const context = $("approval-context");
    clear(context);
    const contextEntries = isObject(model.context) ? Object.entries(model.context) : [];
    contextEntries.forEach(([key, value]) => {
      context.appendChild(el("dt", null, key));
      const dd = el("dd");
      dd.appendChild(appendMarked(el("pre", "context-value"), pretty(value)));
      context.appendChild(dd);
    });
    $("approval-context-section").hidden = contextEntries.length === 0;
    renderList("approval-history", "approval-history-section", Array.isArray(request.decisions) ? request.decisions : [], renderApprovalDecision);

    $("approval-progress").textContent = progressText(request);
    $("approval-decision-fields").disabled = !pending;
    $("approval-approve").disabled = !pending || approvers.includes(me);
    $("approval-approve").title = approvers.includes(me) ? "You already approved this request" : "Approve (a)";
    const position = approvals.list.findIndex((r) => r.id === request.id);
    $("approval-position").textContent = position >= 0 ? `${position + 1} of ${approvals.list.length}` : "";
    $("approval-prev").disabled = position <= 0;
    $("approval-next").disabled = position < 0 || position >= approvals.list.length - 1;
    if (state.view === "approval") document.title = `${request.action} – spanguard review`;
  }

  function modifierOf(request) {
    const decisions = Array.isArray(request.decisions) ? request.decisions.filter(isObject) : [];
    const last = decisions.filter((d) => d.outcome === "modify").pop();
    return last ? String(last.reviewer) : null;
  }

  function renderApprovalDecision(decision) {
    const known = APPROVAL_WORDS[decision.outcome] ? decision.outcome : "other";
    const li = el("li", `decision-record outcome-${known === "modify" ? "correct" : known}`);
    const head = el("div", "decision-head");
    head.appendChild(el("strong", null, decision.reviewer));
    head.appendChild(document.createTextNode(` ${APPROVAL_WORDS[decision.outcome] || decision.outcome}`));
    head.appendChild(el("span", "muted", ` · ${formatTime(decision.at)}`));
    li.appendChild(head);
    if (decision.reason) li.appendChild(el("div", "decision-text", decision.reason));
    if (isObject(decision.arguments)) {
      li.appendChild(appendMarked(el("pre", "decision-text arguments"), pretty(decision.arguments)));
    }
    return li;
  }

  /** One of the agent's earlier tool calls, as the agent recorded it: its name, arguments and result. */
  function renderToolRecord(call) {
    const box = el("article", "turn turn-tool");
    const head = el("header", "turn-head");
    const record = isObject(call) ? call : { result: call };
    const fn = isObject(record.function) ? record.function : {};
    head.appendChild(el("code", "tool-name", record.name || fn.name || record.tool || "(unnamed tool)"));
    const id = idOf(record.id) || idOf(record.call_id) || idOf(record.tool_call_id);
    if (id) head.appendChild(el("span", "muted", id));
    box.appendChild(head);
    const rest = { ...record };
    ["name", "function", "tool", "id", "call_id", "tool_call_id"].forEach((key) => delete rest[key]);
    const args = rest.arguments !== undefined ? rest.arguments : rest.input !== undefined ? rest.input : fn.arguments;
    delete rest.arguments;
    delete rest.input;
    const section = (label, value) => {
      if (value === undefined || value === null) return;
      box.appendChild(el("div", "tool-call-head muted", label));
      box.appendChild(appendMarked(el("pre", "arguments"), pretty(value)));
    };
    section("arguments", args);
    const result = ["result", "output", "response", "content"].find((key) => rest[key] !== undefined);
    if (result) {
      section(result, rest[result]);
      delete rest[result];
    }
    if (Object.keys(rest).length) section("more", rest);
    return box;
  }

  // -- the agent's messages as the item view's turns

  function turnOf(role, content, toolCallId) {
    return { role, content, model: null, tool_calls: [], tool_call_id: toolCallId || null, finish_reason: null, redacted: [] };
  }

  function textOrJson(value) {
    return typeof value === "string" ? value : value === undefined || value === null ? "" : pretty(value);
  }

  /**
   * The agent's messages as turns, read in the shapes agents send: the GenAI conventions' (`parts`), OpenAI chat's
   * (`content`, `tool_calls` with `function`, `tool` messages), Anthropic's (`tool_use` / `tool_result` blocks) and the
   * Responses API's (`function_call` / `function_call_output` items). Anything else is shown as JSON.
   */
  function messageTurns(messages) {
    const turns = [];
    messages.forEach((message) => {
      if (!isObject(message)) {
        turns.push(turnOf("other", textOrJson(message)));
        return;
      }
      const role = typeof message.role === "string" ? message.role.toLowerCase() : message.type ? "assistant" : "other";
      const turn = turnOf(role, "");
      const texts = [];
      const after = [];
      let parts = Array.isArray(message.parts) ? message.parts : Array.isArray(message.content) ? message.content : null;
      if (!parts && message.type) parts = [message]; // a Responses API item
      if (parts) {
        parts.forEach((part) => {
          if (typeof part === "string") texts.push(part);
          if (!isObject(part)) return;
          const type = part.type;
          if (type === "tool_call" || type === "tool_use" || type === "function_call") {
            const args = part.arguments !== undefined ? part.arguments : part.input;
            turn.tool_calls.push({ id: idOf(part.id) || idOf(part.call_id), name: part.name, arguments: args });
          } else if (type === "tool_call_response" || type === "tool_result" || type === "function_call_output") {
            const value = [part.response, part.content, part.output].find((v) => v !== undefined);
            after.push(turnOf("tool", textOrJson(value), idOf(part.id) || idOf(part.tool_use_id) || idOf(part.call_id)));
          } else if (typeof part.content === "string" || typeof part.text === "string") {
            texts.push(typeof part.content === "string" ? part.content : part.text);
          } else {
            texts.push(pretty(part));
          }
        });
      } else if (message.content !== undefined && message.content !== null) {
        texts.push(textOrJson(message.content));
      }
      (Array.isArray(message.tool_calls) ? message.tool_calls : []).filter(isObject).forEach((call) => {
        const fn = isObject(call.function) ? call.function : {};
        const args = fn.arguments !== undefined ? fn.arguments : call.arguments;
        turn.tool_calls.push({ id: idOf(call.id), name: fn.name || call.name, arguments: args });
      });
      turn.content = texts.join("\n");
      if (role === "tool") turn.tool_call_id = idOf(message.tool_call_id);
      if (typeof message.model === "string") turn.model = message.model;
      if (typeof message.finish_reason === "string") turn.finish_reason = message.finish_reason;
      if (turn.content || turn.tool_calls.length || !after.length) turns.push(turn);
      turns.push(...after);
    });
    turns.forEach((turn) => {
      const text = [turn.content, ...turn.tool_calls.map((call) => pretty(call.arguments))].join("\n");
      turn.redacted = [...new Set([...text.matchAll(PLACEHOLDER)].map((match) => match[1]))];
    });
    return turns;
  }

  // -- the argument editor: a field per argument, the whole object as JSON, and the changes

  function kindOf(value) {
    if (typeof value === "string") return "string";
    if (typeof value === "number") return "number";
    if (typeof value === "boolean") return "boolean";
    return "json";
  }

  function renderArgumentEditor(base) {
    approvals.base = base;
    $("approval-json").value = JSON.stringify(base, null, 2);
    showError("approval-json-error", "");
    renderArgumentFields(base);
    updateDiff();
  }

  function renderArgumentFields(value) {
    const box = $("approval-args");
    clear(box);
    approvals.fields = [];
    const entries = Object.entries(value);
    if (!entries.length) box.appendChild(el("p", "muted", "No arguments (add some as JSON below)."));
    entries.forEach(([key, current], index) => {
      const kind = kindOf(current);
      const row = el("div", "arg-field");
      const id = `approval-arg-${index}`;
      const label = el("label", "arg-name", key);
      label.htmlFor = id;
      row.appendChild(label);
      let input;
      if (kind === "boolean") {
        input = document.createElement("select");
        ["true", "false"].forEach((word) => {
          const option = el("option", null, word);
          option.value = word;
          input.appendChild(option);
        });
        input.value = String(current);
      } else if (kind === "json" || (kind === "string" && (current.length > 80 || current.includes("\n")))) {
        input = document.createElement("textarea");
        input.value = kind === "json" ? JSON.stringify(current, null, 2) : current;
        input.rows = Math.min(8, Math.max(2, input.value.split("\n").length));
      } else {
        input = document.createElement("input");
        input.type = "text";
        input.value = String(current);
        if (kind === "number") input.inputMode = "decimal";
      }
      input.id = id;
      input.className = `arg-input arg-${kind}`;
      input.spellcheck = false;
      input.setAttribute("autocomplete", "off");
      const what = kind === "json" ? (Array.isArray(current) ? "list, as JSON" : current === null ? "null, as JSON" : "object, as JSON") : kind;
      row.appendChild(el("span", "arg-kind muted", what));
      row.appendChild(input);
      const error = el("span", "arg-error");
      error.id = `${id}-error`;
      error.hidden = true;
      input.setAttribute("aria-describedby", error.id);
      row.appendChild(error);
      input.addEventListener("input", onFieldInput);
      input.addEventListener("change", onFieldInput);
      box.appendChild(row);
      approvals.fields.push({ key, kind, input, error });
    });
  }

  function fieldValue(field) {
    const text = field.input.value;
    if (field.kind === "string") return { value: text };
    if (field.kind === "boolean") return { value: text === "true" };
    if (field.kind === "number") {
      const trimmed = text.trim();
      if (!JSON_NUMBER.test(trimmed)) return { error: "enter a number, such as 100 or 12.5" };
      const number = Number(trimmed);
      return isFinite(number) ? { value: number } : { error: "the number is too large" };
    }
    try {
      return { value: JSON.parse(text) };
    } catch (error) {
      return { error: `not valid JSON (${error.message})` };
    }
  }

  /** The form's object, or the first field that does not hold a value of its kind. */
  function readFields() {
    const entries = [];
    let invalid = null;
    approvals.fields.forEach((field) => {
      const result = fieldValue(field);
      field.error.textContent = result.error || "";
      field.error.hidden = !result.error;
      field.input.setAttribute("aria-invalid", result.error ? "true" : "false");
      if (result.error && !invalid) invalid = { error: `${field.key}: ${result.error}.`, focus: field.input };
      entries.push([field.key, result.value]);
    });
    return invalid || { value: Object.fromEntries(entries) }; // fromEntries: a "__proto__" key stays a key
  }

  function describeJson(value) {
    if (Array.isArray(value)) return "a list";
    if (value === null) return "null";
    return typeof value === "string" ? "a string" : typeof value === "number" ? "a number" : "true or false";
  }

  function parseArguments(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { error: `The arguments are not valid JSON: ${error.message}.` };
    }
    if (!isObject(value)) {
      return { error: `The arguments must be a JSON object ({"name": value, ...}), not ${describeJson(value)}.` };
    }
    return { value };
  }

  function onFieldInput() {
    const result = readFields();
    if (!result.error) {
      $("approval-json").value = JSON.stringify(result.value, null, 2);
      showError("approval-json-error", "");
    }
    updateDiff();
  }

  function onJsonInput() {
    const result = parseArguments($("approval-json").value);
    showError("approval-json-error", result.error || "");
    if (!result.error) renderArgumentFields(result.value);
    updateDiff();
  }

  /** The edited arguments, or what is wrong with them (and where to go to fix it). */
  function editedArguments() {
    const fields = readFields();
    if (fields.error) return fields;
    const json = $("approval-json");
    const result = parseArguments(json.value);
    if (result.error) {
      $("approval-json-box").open = true;
      return { error: result.error, focus: json };
    }
    return result;
  }

  function updateDiff() {
    const result = editedArguments();
    const changes = result.error ? [] : diffArguments(approvals.base || {}, result.value);
    const body = $("approval-diff");
    clear(body);
    changes.forEach((change) => {
      const row = el("tr");
      row.appendChild(el("td", "diff-path", change.path));
      row.appendChild(appendMarked(el("td", "diff-old"), shownJson(change.before)));
      row.appendChild(appendMarked(el("td", "diff-new"), shownJson(change.after)));
      body.appendChild(row);
    });
    $("approval-diff-box").hidden = changes.length === 0;
    const badge = $("approval-edited");
    badge.hidden = !changes.length && !result.error;
    badge.textContent = result.error ? "edited: not valid" : `edited: ${changes.length} change${changes.length === 1 ? "" : "s"}`;
    return { result, changes };
  }

  function setEditorEnabled(enabled) {
    approvals.fields.forEach((field) => (field.input.disabled = !enabled));
    $("approval-json").disabled = !enabled;
    $("approval-undo").disabled = !enabled;
  }

  /** The leaves that differ between two JSON values: [{path, before, after}], ABSENT for a key or item not there. */
  function diffArguments(before, after, path = "", out = []) {
    if (isObject(before) && isObject(after)) {
      const keys = Object.keys(before).concat(Object.keys(after).filter((key) => !has(before, key)));
      keys.forEach((key) => {
        const step = IDENTIFIER.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
        diffArguments(has(before, key) ? before[key] : ABSENT, has(after, key) ? after[key] : ABSENT, step, out);
      });
    } else if (Array.isArray(before) && Array.isArray(after)) {
      for (let i = 0; i < Math.max(before.length, after.length); i++) {
        diffArguments(i < before.length ? before[i] : ABSENT, i < after.length ? after[i] : ABSENT, `${path}[${i}]`, out);
      }
    } else if (before === ABSENT || after === ABSENT ? before !== after : canonical(before) !== canonical(after)) {
      out.push({ path: path || "(the arguments)", before, after });
    }
    return out;
  }

  /** JSON with sorted keys, so that two values compare equal whatever their key order. */
  function canonical(value) {
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (isObject(value)) {
      const keys = Object.keys(value).sort();
      return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
    }
    return value === undefined ? "null" : JSON.stringify(value);
  }

  function shownJson(value) {
    return value === ABSENT ? "(absent)" : JSON.stringify(value);
  }

  function changeText(change) {
    return `${change.path}: ${shownJson(change.before)} → ${shownJson(change.after)}`;
  }

  // -- deciding

  async function decideApproval(outcome) {
    const request = approvals.current;
    if (!request || request.status !== "pending" || state.busy || state.view !== "approval") return;
    const me = state.me ? state.me.name : "";
    showError("approval-error", "");
    $("approval-result").hidden = true;
    const fail = (message, focus) => {
      showError("approval-error", message);
      if (focus) focus.focus();
    };
    const body = { outcome };
    const { result, changes } = updateDiff();
    if (outcome === "approve") {
      if (approversOf(request).includes(me)) return fail("You already approved this request: another reviewer must.");
      if (result.error || changes.length) {
        return fail(
          "You edited the arguments: submit them with Modify, or undo the edits to approve them as they are.",
          $("approval-modify"),
        );
      }
    } else if (outcome === "reject") {
      const reason = $("approval-reject-reason").value.trim();
      if (!reason) return fail("Write the reason for the rejection: the agent is told it.", $("approval-reject-reason"));
      body.reason = reason;
    } else {
      if (result.error) return fail(result.error, result.focus);
      if (!changes.length) {
        const first = approvals.fields.length ? approvals.fields[0].input : $("approval-json");
        return fail("The arguments are unchanged: edit them first (or approve).", first);
      }
      body.arguments = result.value;
      const why = $("approval-modify-reason").value.trim();
      if (why) body.reason = why;
    }
    setBusy(true);
    let updated;
    try {
      updated = await api("POST", `/v1/approvals/${encodeURIComponent(request.id)}/decision`, body);
      if (!isObject(updated) || updated.id !== request.id) {
        updated = await api("GET", `/v1/approvals/${encodeURIComponent(request.id)}`);
      }
    } catch (error) {
      report(error, "approval-error");
      if (error instanceof ApiError && error.status === 409) await reloadCurrent();
      return;
    } finally {
      setBusy(false);
    }
    if (!approvals.current || approvals.current.id !== request.id) return;
    rememberApproval(updated);
    approvals.current = updated;
    $(outcome === "modify" ? "approval-modify-reason" : "approval-reject-reason").value = "";
    renderApproval(updated, false);
    const box = $("approval-result");
    box.textContent = decisionMessage(outcome, updated);
    box.hidden = false;
    $("approval-title").focus();
    if (updated.status === "pending") watchApproval(updated.id);
    loadPendingCount();
  }

  function decisionMessage(outcome, request) {
    const progress = progressText(request);
    if (outcome === "reject") return "Rejected: the agent is told your reason and does not run the action.";
    if (request.status === "pending") {
      const left = Math.max(0, (Number(request.approvals_required) || 1) - approversOf(request).length);
      const what = outcome === "modify" ? "the edited arguments" : "this request";
      return `You approved ${what}: ${progress}; ${left} more reviewer${left === 1 ? "" : "s"} must approve.`;
    }
    if (request.status === "modified") return `Modified (${progress}): the agent runs the action with your arguments.`;
    if (request.status === "approved") return `Approved (${progress}): the agent may run the action.`;
    return `Recorded; the request is now ${approvalStatusWord(request)}.`;
  }

  // -- datasets of reviewed cases (issue 13) ------------------------------------------------------------------------
  //
  // A decided item becomes a case of a named dataset (POST /v1/datasets/{name}/cases, docs/datasets.md); the Datasets
  // view lists the datasets and their cases and downloads their JSON Lines exports. Case content comes from spans and
  // tags from reviewers: both are untrusted and shown as text only, as everywhere on the page.

  // The service's rules for names and tags (docs/datasets.md, "Datasets in the review service"), checked here first.
  const DATASET_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
  const DATASET_NAME_RULE = "1 to 64 of a-z, 0-9, '_', '-', '.', starting with a letter or digit";
  const RESERVED_NAMES = new Set(["export"]); // GET /v1/datasets/export is the export, not a dataset
  const TAG = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
  const TAG_RULE = "1 to 64 of A-Z, a-z, 0-9, '_', '-', '.', ':', starting with a letter or digit";
  const MAX_TAGS = 20;
  const CASE_PAGE = 50;
  const DATASET_LINK = /^#dataset=([^&]{1,200})$/;
  const PREVIEW_CHARS = 160;

  const datasets = {
    list: [], // [{name, cases}]
    selected: 0,
    request: 0, // only the latest request's answer is shown
    current: null, // the open dataset's name
    cases: [],
    offset: 0,
    total: null, // the open dataset's number of cases, when the service says it
    hasMore: false,
    caseAt: { selected: 0 }, // the selected case row (selectIn's holder)
    tags: [], // the add form's tags
  };

  /** The dataset a `#dataset=name` link names, or null (also for a link that is not valid percent-encoding). */
  function linkedDataset() {
    const match = DATASET_LINK.exec(location.hash);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch (_) {
      return null;
    }
  }

  function datasetNameError(name) {
    if (!name) return "Choose a dataset, or type the name of a new one.";
    if (RESERVED_NAMES.has(name)) return `"${name}" is reserved: choose another dataset name.`;
    return DATASET_NAME.test(name) ? null : `"${name}" is not a dataset name: use ${DATASET_NAME_RULE}.`;
  }

  function tagError(tag) {
    if (!TAG.test(tag)) return `"${tag}" is not a tag: use ${TAG_RULE}.`;
    if (datasets.tags.includes(tag)) return `The tag "${tag}" is already there.`;
    if (datasets.tags.length >= MAX_TAGS) return `At most ${MAX_TAGS} tags.`;
    return null;
  }

  // -- the item view's "Add to a dataset" form

  /** Called by renderItem(): the form is open on a decided item only; the chosen dataset stays from item to item. */
  function resetDatasetForm(item) {
    const open = item.status === "done";
    $("dataset-add-fields").disabled = !open;
    $("dataset-add-fields").hidden = !open;
    $("dataset-add-closed").hidden = open;
    $("dataset-name-rule").textContent = `Name: ${DATASET_NAME_RULE}.`;
    $("dataset-tag-rule").textContent = `Tag: ${TAG_RULE}; at most ${MAX_TAGS}.`;
    $("dataset-tag").value = "";
    datasets.tags = [];
    renderTags();
    showError("dataset-add-error", "");
    $("dataset-add-result").hidden = true;
    if (open) loadDatasetNames();
  }

  /** The existing datasets as the name field's choices; a failure leaves typing a name possible. */
  async function loadDatasetNames() {
    let list;
    try {
      list = datasetList(await api("GET", "/v1/datasets"));
    } catch (_) {
      return;
    }
    const choices = $("dataset-names");
    clear(choices);
    list.forEach((entry) => {
      const option = document.createElement("option");
      option.value = entry.name;
      option.textContent = `${entry.cases} case${entry.cases === 1 ? "" : "s"}`;
      choices.appendChild(option);
    });
  }

  function renderTags() {
    const list = $("dataset-tags");
    clear(list);
    datasets.tags.forEach((tag, index) => {
      const li = el("li", "chip tag-chip");
      li.appendChild(el("span", "tag-text", tag));
      const remove = el("button", "chip-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove the tag ${tag}`);
      remove.title = "Remove this tag";
      remove.addEventListener("click", () => {
        datasets.tags.splice(index, 1);
        renderTags();
        $("dataset-tag").focus();
      });
      li.appendChild(remove);
      list.appendChild(li);
    });
    list.hidden = datasets.tags.length === 0;
  }

  /**
   * Adds the tag field's tags (comma-separated, as pasted) as chips, up to the first that is not a valid new tag,
   * which stays in the field with the reason shown; false then.
   */
  function addTag() {
    const input = $("dataset-tag");
    const pending = input.value.split(",").map((tag) => tag.trim()).filter(Boolean);
    let error = null;
    while (pending.length && !error) {
      error = tagError(pending[0]);
      if (!error) datasets.tags.push(pending.shift());
    }
    input.value = pending.join(", ");
    showError("dataset-add-error", error);
    input.setAttribute("aria-invalid", error ? "true" : "false");
    renderTags();
    return !error;
  }

  function onTagKey(event) {
    const input = event.target;
    if (event.key === "Enter" || event.key === ",") {
      if (event.key === "Enter" && !input.value.trim()) return; // Enter on an empty tag field submits the form
      event.preventDefault();
      addTag();
    } else if (event.key === "Backspace" && !input.value && datasets.tags.length) {
      event.preventDefault();
      datasets.tags.pop();
      renderTags();
    }
  }

  /** True for a decided item; otherwise the form says why it cannot be added (the service would answer 409). */
  function addable(item) {
    $("dataset-add-result").hidden = true;
    const decided = item.status === "done";
    const why = `Item #${item.id} is not decided yet: only a decided item can be added to a dataset.`;
    showError("dataset-add-error", decided ? "" : why);
    if (!decided) inView("dataset-add-error");
    return decided;
  }

  /** The form is at the foot of the side panel, which scrolls: its message is brought into view. */
  function inView(id) {
    $(id).scrollIntoView({ block: "nearest" });
  }

  function focusDatasetForm() {
    if (state.item && addable(state.item)) $("dataset-name").focus();
  }

  async function addToDataset() {
    const item = state.item;
    if (!item || state.busy || !addable(item)) return;
    const nameInput = $("dataset-name");
    const name = nameInput.value.trim();
    const nameError = datasetNameError(name);
    nameInput.setAttribute("aria-invalid", nameError ? "true" : "false");
    if (nameError) {
      showError("dataset-add-error", nameError);
      nameInput.focus();
      return;
    }
    if (!addTag()) {
      $("dataset-tag").focus();
      return;
    }
    const tags = datasets.tags.slice();
    setBusy(true);
    let response;
    let answer = null;
    try {
      const path = `/v1/datasets/${encodeURIComponent(name)}/cases`;
      response = await api("POST", path, { item_id: item.id, tags }, undefined, true);
      answer = await response.json().catch(() => null);
    } catch (error) {
      report(error, "dataset-add-error");
      inView("dataset-add-error");
      return;
    } finally {
      setBusy(false);
    }
    if (!state.item || state.item.id !== item.id) return;
    const box = $("dataset-add-result");
    box.textContent = addedMessage(item, name, response.status === 201, isObject(answer) ? answer : { tags });
    box.hidden = false;
    inView("dataset-add-result");
    datasets.tags = [];
    renderTags();
    loadDatasetNames();
  }

  /** What the service did: a new case (201), or the item was there already and only the tags were merged (200). */
  function addedMessage(item, name, created, answer) {
    const caseId = typeof answer.case_id === "string" ? ` as ${answer.case_id}` : "";
    const tags = Array.isArray(answer.tags) ? answer.tags.map(String) : [];
    const tagText = tags.length ? ` Its tags: ${tags.join(", ")}.` : " It has no tags.";
    if (created) return `Added item #${item.id} to ${name}${caseId}.${tagText}`;
    return `Item #${item.id} was already in ${name}${caseId}: not added twice, tags merged.${tagText}`;
  }

  // -- reading the service's answers

  /** GET /v1/datasets (`{"datasets": [{"name", "cases", "updated_at"}]}`) as [{name, cases}]. */
  function datasetList(data) {
    const found = isObject(data) && Array.isArray(data.datasets) ? data.datasets : [];
    return found
      .filter((entry) => isObject(entry) && typeof entry.name === "string")
      .map((entry) => ({ name: entry.name, cases: Number(entry.cases) || 0 }));
  }

  /** One case of GET /v1/datasets/{name}: its eval case id, outcome, tags, preview and source. */
  function caseView(entry) {
    const itemId = Number(entry.item_id);
    const approval = typeof entry.approval_id === "string" && APPROVAL_ID.test(entry.approval_id);
    return {
      id: idOf(entry.case_id) || idOf(entry.id) || "?",
      outcome: typeof entry.outcome === "string" ? entry.outcome : "",
      tags: Array.isArray(entry.tags) ? entry.tags.map(String) : [],
      preview: typeof entry.preview === "string" ? entry.preview : "",
      itemId: Number.isInteger(itemId) && itemId > 0 ? itemId : null,
      approvalId: approval ? entry.approval_id : null,
    };
  }

  // -- the datasets view

  async function loadDatasets() {
    showError("datasets-error", "");
    const request = ++datasets.request;
    let data;
    try {
      data = await api("GET", "/v1/datasets");
    } catch (error) {
      if (request === datasets.request) report(error, "datasets-error");
      return;
    }
    if (request !== datasets.request) return;
    datasets.list = datasetList(data);
    datasets.selected = Math.min(datasets.selected, Math.max(0, datasets.list.length - 1));
    renderDatasets();
  }

  function renderDatasets() {
    const body = $("datasets-rows");
    clear(body);
    datasets.list.forEach((entry, index) => {
      const row = el("tr", "queue-row dataset-row");
      row.tabIndex = 0;
      row.dataset.index = String(index);
      row.setAttribute("aria-label", `Dataset ${entry.name}, ${entry.cases} cases`);
      if (index === datasets.selected) row.classList.add("selected");
      const name = el("td");
      name.appendChild(el("code", "dataset-name", entry.name));
      row.appendChild(name);
      row.appendChild(el("td", "num dataset-cases", String(entry.cases)));
      body.appendChild(row);
    });
    $("datasets-empty").hidden = datasets.list.length > 0;
    $("datasets-table").hidden = datasets.list.length === 0;
  }

  function datasetRows() {
    return [...$("datasets-rows").querySelectorAll("tr.dataset-row")];
  }

  function caseRows() {
    return [...$("cases-rows").querySelectorAll("tr.case-row")];
  }

  function focusDatasetRow() {
    if (datasetRows().length) selectIn(datasetRows(), datasets, datasets.selected, true);
    else $("datasets-title").focus();
  }

  /** From any view: the datasets (and dataset `name` of them, when given); an item left is given back. */
  async function toDatasets(name) {
    await leaveItem();
    if (!state.me) return;
    state.item = null;
    if (name) {
      await openDataset(name, 0);
      return;
    }
    datasets.current = null;
    show("datasets");
    history.replaceState(null, "", "#datasets");
    await loadDatasets();
    focusDatasetRow();
  }

  async function openDataset(name, offset) {
    showError("dataset-error", "");
    $("dataset-result").hidden = true;
    const request = ++datasets.request;
    const params = new URLSearchParams({ limit: String(CASE_PAGE), offset: String(offset) });
    let data;
    let failed = null;
    setBusy(true);
    try {
      data = await api("GET", `/v1/datasets/${encodeURIComponent(name)}?${params}`);
    } catch (error) {
      failed = error;
    } finally {
      setBusy(false);
    }
    if (request !== datasets.request) return;
    if (failed) {
      // A link to a dataset that is not there (or not valid) opens the list, saying why.
      if (state.me && state.view !== "dataset" && state.view !== "datasets") await toDatasets(null);
      if (state.view === "datasets") history.replaceState(null, "", "#datasets");
      report(failed, state.view === "dataset" ? "dataset-error" : "datasets-error");
      return;
    }
    const found = isObject(data) && Array.isArray(data.cases) ? data.cases : [];
    datasets.cases = found.filter(isObject).map(caseView);
    datasets.current = name;
    datasets.offset = offset;
    const total = isObject(data) ? Number(data.total) : NaN;
    datasets.total = Number.isFinite(total) ? total : null;
    const shown = offset + datasets.cases.length;
    datasets.hasMore = datasets.total !== null ? shown < datasets.total : datasets.cases.length === CASE_PAGE;
    datasets.caseAt.selected = 0;
    renderCases();
    show("dataset");
    history.replaceState(null, "", `#dataset=${encodeURIComponent(name)}`);
    $("dataset-title").focus();
  }

  function renderCases() {
    const name = datasets.current || "";
    $("dataset-title").textContent = `Dataset ${name}`;
    const shown = datasets.cases.length;
    const first = shown ? datasets.offset + 1 : 0;
    const last = datasets.offset + shown;
    const of = datasets.total !== null ? ` of ${datasets.total}` : "";
    $("dataset-count").textContent = shown ? `cases ${first} to ${last}${of}` : "";
    $("cases-page").textContent = shown ? `${first} to ${last}${of}` : "";
    $("cases-prev").disabled = datasets.offset === 0;
    $("cases-next").disabled = !datasets.hasMore;
    const body = $("cases-rows");
    clear(body);
    datasets.cases.forEach((entry, index) => {
      const row = el("tr", "queue-row case-row");
      row.tabIndex = 0;
      row.dataset.index = String(index);
      row.setAttribute("aria-label", `Case ${entry.id}, ${entry.outcome || "no outcome"}`);
      if (index === datasets.caseAt.selected) row.classList.add("selected");
      row.appendChild(el("td", "case-id", entry.id));
      const known = OUTCOME_WORDS[entry.outcome] ? entry.outcome : "other";
      row.appendChild(el("td", `case-outcome outcome-word-${known}`, entry.outcome || "–"));
      const tags = el("td");
      const chips = el("div", "chips");
      entry.tags.forEach((tag) => chips.appendChild(chip(tag, "tag-chip")));
      if (!entry.tags.length) chips.appendChild(el("span", "muted", "–"));
      tags.appendChild(chips);
      row.appendChild(tags);
      const preview = el("td", "preview case-preview");
      const text = entry.preview.length > PREVIEW_CHARS ? `${entry.preview.slice(0, PREVIEW_CHARS)}…` : entry.preview;
      appendMarked(preview, text || "–");
      preview.title = entry.preview;
      row.appendChild(preview);
      const source = el("td");
      if (entry.itemId !== null) {
        const link = el("a", "case-source", `item #${entry.itemId}`);
        link.href = `#item=${entry.itemId}`;
        link.title = "Open the reviewed item this case comes from";
        source.appendChild(link);
      } else if (entry.approvalId !== null) {
        const link = el("a", "case-source", "approval request");
        link.href = `#approval=${entry.approvalId}`;
        link.title = `Open the rejected approval request ${entry.approvalId} this case comes from`;
        source.appendChild(link);
      } else {
        source.appendChild(el("span", "muted", "–"));
      }
      row.appendChild(source);
      body.appendChild(row);
    });
    $("cases-empty").hidden = shown > 0;
    $("cases-table").hidden = shown === 0;
  }

  async function backToDatasets() {
    datasets.current = null;
    show("datasets");
    history.replaceState(null, "", "#datasets");
    renderDatasets();
    focusDatasetRow();
    await loadDatasets();
  }

  /** Fetches the open dataset's export of `kind` with the token (never in a URL) and saves it as a file. */
  async function download(kind) {
    const name = datasets.current;
    if (!name || state.busy) return;
    showError("dataset-error", "");
    const result = $("dataset-result");
    result.hidden = true;
    const params = new URLSearchParams({ kind, dataset: name });
    let blob;
    let rows;
    setBusy(true);
    try {
      const response = await api("GET", `/v1/datasets/export?${params}`, undefined, undefined, true);
      blob = await response.blob();
      rows = (await blob.text()).split("\n").filter((line) => line.trim()).length;
    } catch (error) {
      report(error instanceof ApiError ? error : new ApiError(0, "the download was cut off"), "dataset-error");
      return;
    } finally {
      setBusy(false);
    }
    const file = `${name}.${kind}.jsonl`; // the name is the service's rule: safe as a file name
    const url = URL.createObjectURL(blob);
    const link = el("a");
    link.href = url;
    link.download = file;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000); // after the browser has read it
    const none = kind === "eval" ? "" : ": only corrected cases make SFT and preference rows";
    result.textContent = `Saved ${file}: ${rows} line${rows === 1 ? "" : "s"}${rows ? "" : none}.`;
    result.hidden = false;
  }

  /** Enter on the page itself or on a row of `rowClass` opens the selected row (not on a button or a link). */
  function onRow(event, rowClass) {
    return event.target === document.body || event.target.classList.contains(rowClass);
  }

  function onDatasetsKey(event) {
    const key = event.key;
    if (state.view === "datasets") {
      if (key === "j" || key === "k") {
        event.preventDefault();
        selectIn(datasetRows(), datasets, datasets.selected + (key === "j" ? 1 : -1), true);
      } else if (key === "Enter" && onRow(event, "dataset-row")) {
        const entry = datasets.list[datasets.selected];
        if (entry) {
          event.preventDefault();
          act(() => openDataset(entry.name, 0));
        }
      }
      return;
    }
    const at = datasets.caseAt;
    if (key === "Escape") {
      event.preventDefault();
      act(backToDatasets);
    } else if (key === "j" || key === "k") {
      event.preventDefault();
      selectIn(caseRows(), at, at.selected + (key === "j" ? 1 : -1), true);
    } else if (key === "Enter" && onRow(event, "case-row")) {
      const row = caseRows()[at.selected];
      const link = row ? row.querySelector("a.case-source") : null;
      if (link) {
        event.preventDefault();
        link.click();
      }
    }
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
    const lists = new Set(["queue", "approvals", "datasets"]);
    if (lists.has(state.view) && (key === "q" || key === "p" || key === "t")) {
      event.preventDefault();
      act(key === "q" ? backToQueue : key === "p" ? () => showApprovals(null) : () => toDatasets(null));
      return;
    }
    if (state.view === "datasets" || state.view === "dataset") {
      onDatasetsKey(event);
      return;
    }
    if (state.view === "approvals") {
      if (key === "j" || key === "k") {
        event.preventDefault();
        selectApprovalRow(approvals.selected + (key === "j" ? 1 : -1), true);
      } else if (key === "Enter" && (event.target === document.body || event.target.classList.contains("approval-row"))) {
        const entry = approvals.list[approvals.selected];
        if (entry) {
          event.preventDefault();
          act(() => openApproval(entry.id));
        }
      }
      return;
    }
    if (state.view === "approval") {
      onApprovalKey(event);
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
    if (state.view === "session") {
      if (key === "Escape") {
        event.preventDefault();
        act(backFromSessionPage);
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
      case "s":
        event.preventDefault();
        focusDatasetForm();
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

  // -- the fatigue report's chart: interventions per day against the budget

  const CHART = { width: 720, height: 170, left: 34, right: 8, top: 10, bottom: 24 };

  async function loadReport() {
    let report;
    try {
      report = await api("GET", "/v1/approvals/report?days=30");
    } catch (_) {
      $("fatigue").hidden = true; // a service without the report (or a hiccup): the list stands without it
      return;
    }
    if (state.view !== "approvals") return;
    renderReport(report);
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attributes || {}).forEach(([name, value]) => node.setAttribute(name, String(value)));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function renderReport(report) {
    const days = (isObject(report) && Array.isArray(report.by_day) ? report.by_day : []).filter(isObject);
    const budget = Number(report && report.budget_per_day);
    const box = $("fatigue-chart");
    clear(box);
    if (!days.length || !(budget > 0)) {
      $("fatigue").hidden = true;
      return;
    }
    const count = (day) => Math.max(0, Number(day.requested) || 0);
    const counts = days.map(count);
    const most = Math.max(...counts, budget);
    const { width, height, left, right, top, bottom } = CHART;
    const plotHeight = height - top - bottom;
    const step = (width - left - right) / days.length;
    const y = (value) => top + plotHeight - (value / most) * plotHeight;
    const over = counts.filter((n) => n > budget).length;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
    const summary = `${counts.reduce((a, b) => a + b, 0)} interventions in ${days.length} days; busiest day ${Math.max(...counts)}; ${over} day${over === 1 ? "" : "s"} over the budget of ${budget} a day.`;
    chart.setAttribute("aria-label", summary);
    chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "chart-axis" }));
    [0, most].forEach((value) =>
      chart.appendChild(svg("text", { x: left - 4, y: y(value) + 4, class: "chart-label chart-label-y" }, value)),
    );
    days.forEach((day, index) => {
      const n = counts[index];
      const x = left + index * step + step * 0.15;
      const bar = svg("rect", {
        x,
        y: y(n),
        width: Math.max(1, step * 0.7),
        height: Math.max(0, y(0) - y(n)),
        class: n > budget ? "chart-bar chart-bar-over" : "chart-bar",
      });
      const date = typeof day.date === "string" ? day.date : "";
      bar.appendChild(svg("title", {}, `${date}: ${n} intervention${n === 1 ? "" : "s"} (budget ${budget})`));
      chart.appendChild(bar);
      const last = index === days.length - 1;
      if (last || (index % 7 === 0 && days.length - 1 - index >= 4)) {
        chart.appendChild(svg("text", { x: x + step * 0.35, y: height - 6, class: "chart-label" }, date.slice(5)));
      }
    });
    chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y(budget), y2: y(budget), class: "chart-budget" }));
    chart.appendChild(
      svg("text", { x: width - right, y: y(budget) - 4, class: "chart-label chart-label-budget" }, `budget ${budget}/day`),
    );
    box.appendChild(chart);
    $("fatigue-summary").textContent = summary;
    $("fatigue").hidden = false;
  }

  function onApprovalKey(event) {
    const key = event.key;
    const pending = approvals.current && approvals.current.status === "pending";
    if (key === "Escape") {
      event.preventDefault();
      act(backToApprovals);
    } else if (key === "j" || key === "k") {
      event.preventDefault();
      act(() => moveApproval(key === "j" ? 1 : -1));
    } else if (key === "a") {
      event.preventDefault();
      act(() => decideApproval("approve"));
    } else if (key === "e" && pending) {
      event.preventDefault();
      (approvals.fields.length ? approvals.fields[0].input : $("approval-json")).focus();
      if (!approvals.fields.length) $("approval-json-box").open = true;
    } else if (key === "r" && pending) {
      event.preventDefault();
      $("approval-reject-reason").focus();
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
    document.querySelectorAll("#queue-mode button.mode").forEach((button) =>
      button.addEventListener("click", () => act(() => switchMode(button.dataset.mode))),
    );
    $("correct-turn").addEventListener("change", onTurnChoice);
    $("sessionpage-back").addEventListener("click", () => act(backFromSessionPage));
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
    $("tab-queue").addEventListener("click", () => act(backToQueue));
    $("tab-approvals").addEventListener("click", () => act(() => toApprovals(null)));
    $("a-status").addEventListener("change", () => {
      approvals.status = $("a-status").value;
      approvals.selected = 0;
      loadApprovals();
    });
    $("approvals-refresh").addEventListener("click", () => loadApprovals());
    $("approvals-more").addEventListener("click", () => loadApprovals(true));
    $("approvals-rows").addEventListener("click", (event) => {
      const row = event.target.closest("tr.approval-row");
      if (!row) return;
      approvals.selected = Number(row.dataset.index);
      const entry = approvals.list[approvals.selected];
      if (entry) act(() => openApproval(entry.id));
    });
    $("approvals-rows").addEventListener("focusin", (event) => {
      const row = event.target.closest("tr.approval-row");
      if (row) selectApprovalRow(Number(row.dataset.index), false);
    });
    $("approval-back").addEventListener("click", () => act(backToApprovals));
    $("approval-prev").addEventListener("click", () => act(() => moveApproval(-1)));
    $("approval-next").addEventListener("click", () => act(() => moveApproval(1)));
    $("approval-decision").addEventListener("submit", (event) => event.preventDefault());
    $("approval-approve").addEventListener("click", () => act(() => decideApproval("approve")));
    $("approval-modify").addEventListener("click", () => act(() => decideApproval("modify")));
    $("approval-reject").addEventListener("click", () => act(() => decideApproval("reject")));
    $("approval-json").addEventListener("input", onJsonInput);
    $("approval-undo").addEventListener("click", () => {
      renderArgumentEditor(approvals.base || {});
      showError("approval-error", "");
    });
    $("tab-datasets").addEventListener("click", () => act(() => toDatasets(null)));
    $("dataset-add").addEventListener("submit", (event) => {
      event.preventDefault();
      act(addToDataset);
    });
    $("dataset-tag").addEventListener("keydown", onTagKey);
    $("dataset-name").addEventListener("input", () => $("dataset-name").setAttribute("aria-invalid", "false"));
    $("datasets-refresh").addEventListener("click", () => loadDatasets());
    $("datasets-rows").addEventListener("click", (event) => {
      const row = event.target.closest("tr.dataset-row");
      if (!row) return;
      datasets.selected = Number(row.dataset.index);
      const entry = datasets.list[datasets.selected];
      if (entry) act(() => openDataset(entry.name, 0));
    });
    $("datasets-rows").addEventListener("focusin", (event) => {
      const row = event.target.closest("tr.dataset-row");
      if (row) selectIn(datasetRows(), datasets, Number(row.dataset.index), false);
    });
    $("cases-rows").addEventListener("focusin", (event) => {
      const row = event.target.closest("tr.case-row");
      if (row) selectIn(caseRows(), datasets.caseAt, Number(row.dataset.index), false);
    });
    $("dataset-back").addEventListener("click", () => act(backToDatasets));
    $("cases-prev").addEventListener("click", () => {
      const name = datasets.current;
      if (name) act(() => openDataset(name, Math.max(0, datasets.offset - CASE_PAGE)));
    });
    $("cases-next").addEventListener("click", () => {
      const name = datasets.current;
      if (name) act(() => openDataset(name, datasets.offset + CASE_PAGE));
    });
    document.querySelectorAll("button.download").forEach((button) =>
      button.addEventListener("click", () => act(() => download(button.dataset.kind))),
    );
    document.addEventListener("keydown", onKey);
    // Closing the tab or the browser on an open item gives it back at once, as leaving it does, instead of leaving it
    // claimed until the lease runs out. fetch with keepalive, not sendBeacon: the API takes the token in the
    // Authorization header, which a beacon cannot send (and a token in a beacon's body would be a CSRF door).
    window.addEventListener("pagehide", () => {
      const item = state.item;
      if (!item || !state.claimedHere || state.decided || !state.token) return;
      state.claimedHere = false;
      state.held = false;
      try {
        fetch(`/v1/review-items/${item.id}/release`, {
          method: "POST",
          keepalive: true,
          cache: "no-store",
          credentials: "omit",
          headers: { Accept: "application/json", Authorization: `Bearer ${state.token}` },
        }).catch(() => {});
      } catch (_) {
        // The page is going away: nothing to report to.
      }
    });
    window.addEventListener("hashchange", () => {
      const approvalLink = APPROVAL_LINK.exec(location.hash);
      if (approvalLink && state.me && (!approvals.current || approvals.current.id !== approvalLink[1])) {
        act(() => toApprovals(approvalLink[1]));
        return;
      }
      if (location.hash === "#approvals" && state.me && state.view !== "approvals") {
        act(() => toApprovals(null));
        return;
      }
      const datasetLink = linkedDataset();
      if (datasetLink && state.me && datasets.current !== datasetLink) {
        act(() => toDatasets(datasetLink));
        return;
      }
      if (location.hash === "#datasets" && state.me && state.view !== "datasets") {
        act(() => toDatasets(null));
        return;
      }
      const sessionLink = linkedSession();
      if (sessionLink !== null && state.me) {
        const shown = sessionPage.current && state.view === "session" ? sessionPage.current.conversation_id : null;
        if (shown !== sessionLink) act(() => toSessionPage(sessionLink));
        return;
      }
      const queueLink = QUEUE_LINK.exec(location.hash);
      if (queueLink && state.me && (state.view !== "queue" || state.mode !== queueLink[1])) {
        act(() => switchMode(queueLink[1]));
        return;
      }
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
