// Actions: a button with data-post asks for confirmation, then POSTs with the CSRF
// token from the page and reloads. Pages refresh themselves every 5 s otherwise.
const post = (url, body) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  return fetch(url, {method: "POST", headers: {"X-CSRF-Token": token, "Content-Type": "application/json"}, body: body});
};
document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-post]");
  if (!b) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  const res = await post(b.dataset.post, b.dataset.body || null);
  if (!res.ok) { alert((await res.json()).error); return; }
  location.reload();
});
// A form with data-post builds its body by its kind (below), asks for confirmation and
// posts it; the API's error shows in its output.
const forms = {
  // a fair key's weight: {"key": K, "weight": W}
  weight: (f) => {
    const key = f.elements.key.value, raw = f.elements.weight.value, weight = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(weight)) return {error: "weight " + raw + ": want a number"};
    const name = f.dataset.name || key;
    return {body: {key: key, weight: weight}, ask: "Set the weight of key " + name + " in " + f.dataset.queue + " to " + weight + "?"};
  },
  // a limit: {"scope", "task", "max_running", "rate"}, the cap and rate sent as typed
  // (the API names a bad one); a blank field is "none", or with data-blank="keep" left
  // out, which keeps its setting
  limit: (f) => {
    const e = f.elements, keep = f.dataset.blank === "keep";
    const part = (v) => (v.trim() === "" ? (keep ? undefined : "none") : v.trim());
    const body = {scope: e.scope.value};
    if (body.scope === "task") body.task = e.task.value;
    const cap = part(e.max_running.value), rate = part(e.rate.value);
    if (cap !== undefined) body.max_running = cap;
    if (rate !== undefined) body.rate = rate;
    const what = {task: "task " + body.task, key: "each fair key", queue: "the queue"}[body.scope] || body.scope;
    const say = (v, n) => (v === undefined ? n + " unchanged" : v === "none" ? "no " + n : n + " " + v);
    return {body: body, ask: "Set the limit of " + what + " in " + f.dataset.queue + ": " + say(cap, "cap") + ", " + say(rate, "rate") + "?"};
  },
};
document.addEventListener("submit", async (ev) => {
  const f = ev.target.closest("form[data-post]");
  if (!f) return;
  ev.preventDefault();
  const out = f.querySelector("output");
  const show = (text) => { if (out) out.textContent = text; };
  const req = (f.classList.contains("limit") ? forms.limit : forms.weight)(f);
  if (req.error) { show(req.error); return; }
  if (!confirm(req.ask)) return;
  show("");
  const res = await post(f.dataset.post, JSON.stringify(req.body));
  if (!res.ok) {
    let text = res.status + " " + res.statusText;
    try { text = (await res.json()).error || text; } catch (e) { /* not JSON: the status */ }
    show(text);
    return;
  }
  location.reload();
});
// ?norefresh (or the chronoq_norefresh cookie) keeps a page still, for reading or tests;
// a page is not reloaded under a form being filled in (focused, or changed)
const editing = () => {
  const a = document.activeElement;
  if (a && a.closest("form")) return true;
  return [...document.querySelectorAll("form input")].some((i) => i.value !== i.defaultValue);
};
if (!location.search.includes("norefresh") && !document.cookie.includes("chronoq_norefresh=1")) {
  const refresh = () => { if (editing()) setTimeout(refresh, 5000); else location.reload(); };
  setTimeout(refresh, 5000);
}
