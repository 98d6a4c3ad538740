// interlock's dashboard: polls /dashboard/api/state every second and draws it.
// No framework and no build step; every value from the proxy goes in as text, never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]').content;
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const openTimelines = new Set();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function seconds(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function badge(text, cls) {
  return el("span", { class: `badge ${cls || text}` }, text);
}

function quotaCell(account) {
  const models = Object.entries(account.quota);
  if (!models.length) {
    return el("span", { class: "muted" }, account.quota_error ? `not read: ${account.quota_error}` : "not read yet");
  }
  const grid = el("div", { class: "quota" });
  for (const [model, q] of models) {
    const fraction = q.remaining_fraction;
    const pct = fraction === null ? null : Math.round(fraction * 100);
    const level = fraction === null ? "" : fraction <= 0 ? "empty" : fraction < 0.1 ? "low" : "";
    const fill = el("span");
    fill.style.width = `${pct === null ? 0 : pct}%`;
    grid.append(
      el("span", {}, model),
      el("div", { class: `bar ${level}`, title: q.reset_time ? `resets ${q.reset_time}` : "" }, fill),
      el("span", { class: "muted" }, pct === null ? "?" : `${pct}%`, q.reset_time && fraction < 1 ? ` · resets ${q.reset_time}` : ""),
    );
  }
  return grid;
}

function restsCell(account) {
  const notes = [];
  if (account.invalid_reason) notes.push(el("li", {}, `invalid: ${account.invalid_reason}`));
  for (const rest of account.rests) {
    notes.push(el("li", {}, `${rest.model}: ${rest.reason}, ${seconds(rest.seconds_left)} left (until ${rest.until})`));
  }
  return notes.length ? el("ul", { class: "rests" }, ...notes) : el("span", { class: "muted" }, "—");
}

async function toggle(account, enable) {
  const action = enable ? "enable" : "disable";
  const response = await fetch(`/dashboard/api/accounts/${encodeURIComponent(account)}/${action}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Interlock-CSRF": CSRF, "Content-Type": "application/json" },
    body: "{}",
  });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    setStatus(`could not ${action} ${account}: ${answer.error || response.status}`, false);
  }
  await refresh();
}

function drawAccounts(accounts) {
  const body = document.querySelector("#accounts tbody");
  body.replaceChildren(
    ...accounts.map((a) => {
      const button = el("button", { type: "button", "data-action": a.enabled ? "disable" : "enable" }, a.enabled ? "Disable" : "Enable");
      button.addEventListener("click", () => toggle(a.id, !a.enabled));
      return el(
        "tr",
        { "data-account": a.id },
        el("td", {}, el("div", {}, a.label), el("div", { class: "muted" }, a.id, a.in_flight ? ` · ${a.in_flight} in flight` : "")),
        el("td", {}, badge(a.state)),
        el("td", {}, a.tier || el("span", { class: "muted" }, "?")),
        el("td", {}, quotaCell(a)),
        el("td", {}, restsCell(a)),
        el("td", {}, button),
      );
    }),
  );
}

function drawEndpoints(endpoints) {
  const body = document.querySelector("#endpoints tbody");
  body.replaceChildren(
    ...Object.entries(endpoints).map(([name, e]) =>
      el("tr", { "data-endpoint": name }, el("td", {}, name), el("td", {}, badge(e.state)), el("td", {}, e.consecutive_failures), el("td", {}, e.retry_budget)),
    ),
  );
}

function drawInFlight(requests) {
  const counts = {};
  for (const r of requests) counts[r.state] = (counts[r.state] || 0) + 1;
  for (const box of document.querySelectorAll("#chart .state")) {
    const n = counts[box.dataset.state] || 0;
    box.classList.toggle("busy", n > 0);
    box.querySelector(".count").textContent = n ? `${n} request${n > 1 ? "s" : ""}` : "";
  }
  const list = document.querySelector("#in-flight");
  if (!requests.length) {
    list.replaceChildren(el("li", { class: "muted" }, "none"));
    return;
  }
  list.replaceChildren(
    ...requests.map((r) =>
      el(
        "li",
        { "data-request": r.id, "data-state": r.state },
        el("span", { class: "chip" }, r.state),
        ` ${r.id} · ${r.client_model && r.client_model !== r.model ? `${r.client_model} → ` : ""}${r.model} · ${seconds(r.in_state_s)} in ${r.state}, ${seconds(r.age_s)} old`,
        r.attempts.length ? ` · attempts ${r.attempts.join(", ")}` : "",
      ),
    ),
  );
}

function drawFinished(finished) {
  const list = document.querySelector("#finished");
  if (!finished.length) {
    list.replaceChildren(el("li", { class: "muted" }, "none yet"));
    return;
  }
  list.replaceChildren(
    ...finished.map((r) => {
      const details = el(
        "details",
        { open: openTimelines.has(r.id) },
        el("summary", {}, `${r.id} · ${r.model} → ${r.status} ${r.outcome}${r.failure ? ` (${r.failure})` : ""} · ${r.seconds.toFixed(3)} s · ${r.attempts.length} attempt${r.attempts.length === 1 ? "" : "s"}`),
        el("pre", {}, r.timeline),
      );
      details.addEventListener("toggle", () => (details.open ? openTimelines.add(r.id) : openTimelines.delete(r.id)));
      return el("li", { "data-request": r.id, "data-outcome": r.outcome }, details);
    }),
  );
}

function bars(values, minutes) {
  // one bar per minute of the last hour, the newest at the right
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 240 24");
  const top = Math.max(1, ...values);
  const newest = Math.max(...minutes);
  values.forEach((v, i) => {
    if (!v) return;
    const bar = document.createElementNS(SVG_NS, "rect");
    const height = Math.max(2, (v / top) * 22);
    bar.setAttribute("x", String((59 - (newest - minutes[i])) * 4));
    bar.setAttribute("y", String(24 - height));
    bar.setAttribute("width", "3");
    bar.setAttribute("height", String(height));
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `${v} in minute ${new Date(minutes[i] * 60000).toISOString().slice(11, 16)} UTC`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

function drawHistory(history) {
  const series = new Map();
  const minutes = history.map((m) => m.minute);
  history.forEach((minute, i) => {
    for (const [kind, counts] of [["outcome", minute.outcomes], ["attempt", minute.attempts]]) {
      for (const [name, n] of Object.entries(counts)) {
        const key = `${kind}: ${name}`;
        if (!series.has(key)) series.set(key, new Array(history.length).fill(0));
        series.get(key)[i] = n;
      }
    }
  });
  const body = document.querySelector("#history tbody");
  if (!series.size) {
    body.replaceChildren(el("tr", {}, el("td", { class: "muted", colSpan: 3 }, "no requests yet")));
    return;
  }
  body.replaceChildren(
    ...[...series.entries()].sort().map(([key, values]) =>
      el("tr", { "data-series": key }, el("td", {}, key), el("td", {}, bars(values, minutes)), el("td", {}, values.reduce((a, b) => a + b, 0))),
    ),
  );
}

function setStatus(text, ok) {
  const status = document.querySelector("#status");
  status.textContent = text;
  status.className = `status ${ok ? "ok" : "bad"}`;
}

async function refresh() {
  let state;
  try {
    const response = await fetch("/dashboard/api/state", { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) {
      window.location.assign("/dashboard/login");
      return;
    }
    state = await response.json();
  } catch (err) {
    setStatus("the proxy does not answer", false);
    return;
  }
  drawAccounts(state.accounts);
  drawEndpoints(state.endpoints);
  drawInFlight(state.in_flight);
  drawFinished(state.finished);
  drawHistory(state.history);
  document.querySelector("#clock").textContent = state.now;
  const usable = state.accounts.filter((a) => a.state === "usable").length;
  setStatus(`live · ${usable} of ${state.accounts.length} accounts usable`, usable > 0);
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}

loop();
