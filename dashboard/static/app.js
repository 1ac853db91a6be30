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
// ?norefresh (or the chronoq_norefresh cookie) keeps a page still, for reading or tests
if (!location.search.includes("norefresh") && !document.cookie.includes("chronoq_norefresh=1")) {
  setTimeout(() => location.reload(), 5000);
}
