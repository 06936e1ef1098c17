// The inspector page: follows /-/inspector/events and draws each flow as a timeline.
// Everything from the gateway is data, written with textContent, never parsed as HTML.
"use strict";

const flows = new Map(); // flow id -> {li, header, timeline, summaryStatus}
const list = document.getElementById("flows");
const statusLine = document.getElementById("status");

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function pretty(raw) {
  try { return JSON.stringify(raw, null, 2); } catch (_) { return String(raw); }
}

function flowView(h) {
  let f = flows.get(h.id);
  if (f) return f;
  const li = el("li", "flow");
  li.dataset.flow = String(h.id);
  const details = el("details");
  details.open = true;
  const summary = el("summary");
  summary.append(el("span", "kind", h.kind), el("span", "route", h.method + " " + h.route));
  const st = el("span", "status", "…");
  summary.append(st);
  const timeline = el("ol", "timeline");
  details.append(summary, timeline);
  li.append(details);
  list.prepend(li);
  // Keep the page as bounded as the gateway's ring.
  while (list.children.length > 200) {
    const last = list.lastElementChild;
    flows.delete(Number(last.dataset.flow));
    last.remove();
  }
  f = { li, timeline, st, details };
  flows.set(h.id, f);
  return f;
}

function callbackStep(c) {
  const li = el("li", "step callback" + (c.error ? " failed" : ""));
  li.dataset.callback = c.name;
  const h = el("h3");
  h.append(el("span", "name", c.name));
  if (c.trigger) h.append(el("span", "badge", "trigger: " + c.trigger));
  h.append(el("span", "meta", c.durationMs.toFixed(3) + " ms · scripts " + c.generation));
  li.append(h);
  (c.args || []).forEach((a, i) => {
    li.append(el("div", "label", (c.args.length > 1 ? "argument " + (i + 1) : "argument")));
    li.append(el("pre", "args", pretty(a)));
  });
  if (c.error) {
    const where = c.error.file ? " at " + c.error.file + ":" + c.error.line + ":" + c.error.column : "";
    li.append(el("div", "error", c.error.kind + ": " + c.error.message + where));
    if (c.error.source) li.append(el("pre", "error source", c.error.source));
  } else if (c.result !== undefined) {
    li.append(el("div", "label", "returned"));
    li.append(el("pre", "result", pretty(c.result)));
  } else {
    li.append(el("div", "label", "returned undefined"));
  }
  return li;
}

function coreStep(c) {
  const li = el("li", "step core");
  li.dataset.core = c.what;
  const h = el("h3");
  h.append(el("span", "badge", "core: " + c.what), el("span", "", c.summary));
  li.append(h);
  if (c.detail) li.append(el("pre", "detail", pretty(c.detail)));
  return li;
}

function onEvent(ev) {
  const e = JSON.parse(ev.data);
  switch (e.type) {
    case "flow":
      flowView(e.start);
      break;
    case "callback":
    case "core": {
      const f = flows.get(e.flow) || flowView({ id: e.flow, kind: "?", method: "", route: "(earlier)" });
      f.timeline.append(e.type === "callback" ? callbackStep(e.callback) : coreStep(e.core));
      break;
    }
    case "end": {
      const f = flowView(e.start);
      f.st.textContent = e.start.status + " · " + e.start.durationMs.toFixed(2) + " ms";
      if (e.start.status >= 400) f.st.classList.add("err");
      f.li.dataset.done = "true";
      break;
    }
  }
}

function connect() {
  const src = new EventSource("/-/inspector/events");
  for (const t of ["flow", "callback", "core", "end"]) src.addEventListener(t, onEvent);
  src.onopen = () => { statusLine.textContent = "live"; statusLine.className = "live"; };
  src.onerror = () => { statusLine.textContent = "disconnected, retrying…"; statusLine.className = "down"; };
}

connect();
