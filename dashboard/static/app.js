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
// A form with data-post sets a fair key's weight: its key and weight fields go as
// {"key": K, "weight": W}, after confirmation; the API's error shows in its output.
document.addEventListener("submit", async (ev) => {
  const f = ev.target.closest("form[data-post]");
  if (!f) return;
  ev.preventDefault();
  const out = f.querySelector("output");
  const show = (text) => { if (out) out.textContent = text; };
  const key = f.elements.key.value, raw = f.elements.weight.value, weight = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(weight)) { show("weight " + raw + ": want a number"); return; }
  const name = f.dataset.name || key;
  if (!confirm("Set the weight of key " + name + " in " + f.dataset.queue + " to " + weight + "?")) return;
  show("");
  const res = await post(f.dataset.post, JSON.stringify({key: key, weight: weight}));
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
