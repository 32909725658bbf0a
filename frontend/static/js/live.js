// Live prompts (loaded only on the pages of live batches). The pages work without it: plain forms, and
// htmx polls the progress fragment. This adds Ctrl/Cmd+Enter to send, a character count, and one send
// per click. Single-key shortcuts stay off here: the page is for typing.

const sent = new WeakSet();

function count(area) {
  const out = area.form?.querySelector('.live-count');
  if (!out) return;
  const max = Number(area.dataset.maxChars || 0);
  const n = area.value.trim().length;
  out.textContent = n ? `${n.toLocaleString()} / ${max.toLocaleString()}` : '';
  out.classList.toggle('error', max > 0 && n > max);
}

document.addEventListener('input', (e) => {
  if (e.target.matches?.('textarea[data-max-chars]')) count(e.target);
});

document.addEventListener('keydown', (e) => {
  const area = e.target;
  if (!area.matches?.('textarea[data-max-chars]') || e.isComposing) return;
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.altKey) {
    e.preventDefault();
    if (!e.repeat) area.form?.requestSubmit();
  }
});

document.addEventListener('submit', (e) => {
  const form = e.target;
  if (!form.closest?.('#live')) return;
  // A second click while the first is on its way would only be a replay (the server keeps one turn).
  if (sent.has(form)) {
    e.preventDefault();
    return;
  }
  sent.add(form);
  for (const b of document.querySelectorAll(`#live button[type="submit"]`)) b.setAttribute('aria-disabled', 'true');
});

// Back to this page through the back/forward cache: show the dialogue as it is now, not as it was.
window.addEventListener('pageshow', (e) => {
  if (e.persisted) location.reload();
});

for (const area of document.querySelectorAll('textarea[data-max-chars]')) count(area);
