// The live view: the regime's story, a timeline with play/pause/seek/speed, the decision
// feed (Server-Sent Events), counters, and "try it". Plain JavaScript, no dependencies.
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token") || sessionStorage.getItem("chokepoint-token") || "";
if (token) sessionStorage.setItem("chokepoint-token", token);
const $ = (id) => document.getElementById(id);
const PASSING = new Set(["allow"]);
let story = null;
let status = null;

async function api(method, path, body) {
  const res = await fetch(path + (token ? `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : ""), {
    method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const v = await res.json();
  if (!res.ok) throw new Error(v.error || res.statusText);
  return v;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function localTime(iso, tz) {
  try {
    // Every clock says its zone (the profile's: Almaty was UTC+6 until 2024).
    return new Intl.DateTimeFormat("en-GB", { timeZone: tz, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }).format(new Date(iso));
  } catch { return iso; }
}
const zone = () => (story && story.active[0] ? story.active[0].timezone : "UTC");

function renderStory() {
  const a = story.active;
  $("title").textContent = a.length ? a.map((p) => p.title).join(" + ") : "No regime active";
  $("dates").textContent = a.map((p) => `${p.id}: ${localTime(p.period.start, p.timezone)} – ${p.period.end ? localTime(p.period.end, p.timezone) : "open"} (${p.timezone})`).join("; ");
  if (a[0] && a[0].confidence) $("dates").append(el("span", { class: "badge", title: "confidence of the record" }, `confidence ${a[0].confidence}`));
  $("description").textContent = a.map((p) => p.description).join(" ");
  $("rules").replaceChildren(...a.flatMap((p) => p.rules.map((r) => el("li", {}, el("b", {}, r.id), `: ${r.action} on ${r.networks.join(", ")}${r.seed ? ` (seed ${r.seed})` : ""}`))));
  $("sources").replaceChildren(...story.seeds.map((s) => el("li", {}, el("b", {}, s.title), ` (${s.when.start}${s.when.end ? ` – ${s.when.end}` : ""}, ${s.where}; confidence ${s.confidence}). ${s.what} `,
    ...s.sources.map((x) => (x.url ? el("a", { href: x.url, rel: "noreferrer", target: "_blank" }, `${x.publisher}: ${x.title} (${x.date})`) : `${x.publisher}: ${x.title} (${x.date})`)))));
  const nets = [...new Set(a.flatMap((p) => p.networks))];
  $("try-network").replaceChildren(...nets.map((n) => el("option", { value: n }, n)));
  renderTimeline();
}

function renderTimeline() {
  const tl = story.timeline;
  const box = $("timeline");
  for (const s of [...box.querySelectorAll(".seg")]) s.remove();
  if (!tl) return;
  const t0 = Date.parse(tl.start), t1 = Date.parse(tl.end);
  for (const seg of tl.segments) {
    if (!seg.rules.length) continue;
    const left = ((Date.parse(seg.start) - t0) / (t1 - t0)) * 100;
    const width = Math.max(0.3, ((Date.parse(seg.end) - Date.parse(seg.start)) / (t1 - t0)) * 100);
    const d = el("div", { class: "seg blocking", title: seg.rules.join(", ") });
    d.style.left = `${left}%`;
    d.style.width = `${width}%`;
    box.append(d);
  }
  $("tl-start").textContent = localTime(tl.start, zone());
  $("tl-end").textContent = localTime(tl.end, zone());
}

function renderStatus() {
  $("lab-time").textContent = localTime(status.labTime, zone());
  $("clock-state").textContent = status.clock.paused ? "paused" : `x${status.clock.speed}`;
  $("play").textContent = status.clock.paused ? "Play" : "Pause";
  $("speed").value = String(status.clock.speed);
  const tl = story && story.timeline;
  if (tl) {
    const f = (Date.parse(status.labTime) - Date.parse(tl.start)) / (Date.parse(tl.end) - Date.parse(tl.start));
    $("now").style.left = `${Math.min(100, Math.max(0, f * 100))}%`;
  }
  const rows = [];
  for (const [action, byNet] of Object.entries(status.counters)) {
    for (const [net, n] of Object.entries(byNet)) rows.push(el("tr", { "data-action": action, "data-network": net }, el("td", {}, action), el("td", {}, net), el("td", { class: "n" }, String(n))));
  }
  $("counters").tBodies[0].replaceChildren(...rows);
  $("total").textContent = String(status.total);
}

function target(e) {
  const o = e.observation || {};
  return o.name || o.sni || o.host || (o.service ? `${o.service}${o.to ? ` to ${o.to}` : ""}` : "") || (o.ip ? `${o.ip}${o.port ? `:${o.port}` : ""}` : "") || "";
}

function addDecision(e) {
  const blocked = !PASSING.has(e.action);
  const seed = e.seed && story ? story.seeds.find((s) => s.id === e.seed) : null;
  const why = e.rule ? `by ${e.profile}/${e.rule}${seed ? `, per ${seed.sources[0].publisher} (${seed.sources[0].date})` : ""}${e.detail && e.detail.enforcedBy === "kernel" ? ", in the kernel" : ""}` : "no rule matched";
  const li = el("li", { class: blocked ? "block" : "allow", "data-action": e.action, "data-rule": e.rule || "" },
    el("span", { class: "act" }, e.action), ` ${target(e)} `, el("span", { class: "why" }, `${e.component}, ${e.network || "-"}, ${localTime(e.labTime, zone())}: ${why}`));
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > 200) feed.lastChild.remove();
}

async function refreshStatus() {
  try { status = await api("GET", "/v1/status"); renderStatus(); } catch (err) { $("clock-state").textContent = err.message; }
}

async function start() {
  story = await api("GET", "/v1/profiles");
  renderStory();
  await refreshStatus();
  setInterval(refreshStatus, 500);
  // The last decisions first (a page opened after they happened still shows them), then live ones.
  const es = new EventSource(`/v1/events?history=40${token ? `&token=${encodeURIComponent(token)}` : ""}`);
  es.addEventListener("decision", (m) => addDecision(JSON.parse(m.data)));
}

$("play").addEventListener("click", async () => { await api("POST", "/v1/clock", { pause: !status.clock.paused }); refreshStatus(); });
$("speed").addEventListener("change", async () => { await api("POST", "/v1/clock", { speed: Number($("speed").value) }); refreshStatus(); });
$("seek-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("seek-error").textContent = "";
  try { await api("POST", "/v1/clock", { seek: $("seek").value.trim() }); refreshStatus(); } catch (err) { $("seek-error").textContent = err.message; }
});
$("timeline").addEventListener("click", async (ev) => {
  const tl = story && story.timeline;
  if (!tl) return;
  const r = $("timeline").getBoundingClientRect();
  const t = Date.parse(tl.start) + ((ev.clientX - r.left) / r.width) * (Date.parse(tl.end) - Date.parse(tl.start));
  await api("POST", "/v1/clock", { seek: new Date(t).toISOString() });
  refreshStatus();
});
$("clear-feed").addEventListener("click", () => $("feed").replaceChildren());
$("reset").addEventListener("click", async () => { await api("POST", "/v1/reset"); refreshStatus(); });
$("try-kind").addEventListener("change", () => {
  const kind = $("try-kind").value;
  $("try-service").hidden = kind !== "service";
  $("try-target").hidden = kind === "service";
  $("try-target").value = kind === "url" ? "https://www.example.kz/" : kind === "dns" ? "www.example.kz" : "";
});
$("try-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const kind = $("try-kind").value;
  const body = { network: $("try-network").value };
  if (kind === "url") body.url = $("try-target").value.trim();
  else if (kind === "dns") body.dns = $("try-target").value.trim();
  else body.service = $("try-service").value;
  const box = $("try-result");
  box.hidden = false;
  box.className = "result";
  box.textContent = "sending…";
  try {
    const r = await api("POST", "/v1/try", body);
    const ok = r.observed === "false" || r.observed === "answered";
    box.className = `result ${ok ? "ok" : "bad"}`;
    box.setAttribute("data-observed", r.observed);
    box.replaceChildren(el("b", {}, ok ? "Got through" : `Blocked (${r.observed})`), `: ${r.what} on ${r.network}: ${r.detail}. `,
      ...r.events.filter((e) => e.rule).slice(0, 3).map((e) => el("span", { class: "why" }, `${e.action} by ${e.profile}/${e.rule}. `)));
  } catch (err) {
    box.className = "result bad";
    box.textContent = err.message;
  }
});
start().catch((err) => { $("title").textContent = `Cannot reach the lab: ${err.message}`; });
