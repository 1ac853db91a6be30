// Actions: a button with data-post asks for confirmation, then POSTs with the CSRF
// token from the page and reloads. Pages refresh themselves every 5 s otherwise.
document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-post]");
  if (!b) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const res = await fetch(b.dataset.post, {method: "POST", headers: {"X-CSRF-Token": token, "Content-Type": "application/json"}, body: b.dataset.body || null});
  if (!res.ok) { alert((await res.json()).error); return; }
  location.reload();
});
// A form with data-post-form POSTs its fields as JSON (number inputs as numbers) with
// the CSRF token, shows the server's error, and reloads.
document.addEventListener("submit", async (ev) => {
  const f = ev.target.closest("form[data-post-form]");
  if (!f) return;
  ev.preventDefault();
  const body = {};
  for (const el of f.querySelectorAll("input[name]")) {
    body[el.name] = el.type === "number" ? Number(el.value) : el.value;
  }
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const res = await fetch(f.dataset.postForm, {method: "POST", headers: {"X-CSRF-Token": token, "Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (!res.ok) { const e = document.createElement("p"); e.className = "error"; e.id = "form-error"; e.textContent = (await res.json()).error; f.after(e); return; }
  location.reload();
});
// ?norefresh (or the chronoq_norefresh cookie) keeps a page still, for reading or tests
if (!location.search.includes("norefresh") && !document.cookie.includes("chronoq_norefresh=1")) {
  // not while a form is being filled in: wait for the next tick
  const tick = () => document.activeElement?.closest("form") ? setTimeout(tick, 5000) : location.reload();
  setTimeout(tick, 5000);
}
