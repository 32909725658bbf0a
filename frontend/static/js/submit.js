// Sending answers. A judgment or a skip is written to `wb:pending` before it leaves, and removed only once
// the server gave a definite answer, so neither a dropped connection, a restarted server, an expired session
// nor a closed tab loses it: it is sent again (same idempotency key, so the server keeps one judgment) on
// the next page load, on `online`, and on a backoff timer (1 s, 2 s, 4 s ... 30 s).

import { $, banner, csrfToken, focusBlock, itemSection, say, store } from './util.js';
import * as autosave from './autosave.js';
import { closeDialog } from './dialogs.js';

export const PENDING = 'wb:pending';
const OFFLINE_TEXT = 'Offline — your answer is kept and will be sent when the connection is back';
const SESSION_TEXT = 'Your session has ended — sign in again; your answer is kept and will be sent';
const MAX_DELAY = 30000;

let inFlight = false;
let retryTimer = null;
let retryDelay = 1000;
let onSwap = () => {};

/** `swapped(section, how)` runs after a new section replaced the old one (how: saved|errors|conflict|loaded). */
export function configure({ swapped }) {
  onSwap = swapped;
}

export const busy = () => inFlight;

function setBusy(on) {
  inFlight = on;
  const section = itemSection();
  if (!section) return;
  section.setAttribute('aria-busy', on ? 'true' : 'false');
  for (const b of section.querySelectorAll('#submit-button, #skip-form button[type="submit"]')) b.disabled = on;
}

function fetchHeaders() {
  return { 'X-Requested-With': 'fetch', 'X-CSRFToken': csrfToken() };
}

function loginUrl() {
  const base = document.getElementById('connection-status')?.dataset.loginUrl || '/accounts/login/';
  return `${base}?next=${encodeURIComponent(location.pathname + location.search)}`;
}

function entryFrom(form, kind) {
  const section = itemSection();
  const data = new FormData(form);
  // The page's token may be stale by the time this is (re)sent: the header, read at send time, carries it.
  data.delete('csrfmiddlewaretoken');
  return {
    v: 1,
    kind,
    url: new URL(form.action, location.href).pathname,
    fields: Array.from(data.entries()).map(([k, v]) => [k, String(v)]),
    key: String(data.get('idempotency_key') || ''),
    assignment: section ? section.dataset.assignment : '',
    pageUrl: section ? section.dataset.pageUrl : location.pathname,
    nextUrl: section ? section.dataset.nextUrl : '',
    createdAt: Date.now(),
  };
}

/** Parse a returned fragment without running anything in it, and take its #workbench section. */
function parseSection(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const section = doc.getElementById('workbench');
  return section ? document.adoptNode(section) : null;
}

let shown = location.pathname + location.search;
/** The URL of what the page shows now (a hash change is not a new page). */
export const shownUrl = () => shown;

function pushUrl(url) {
  if (url && url !== location.pathname + location.search) history.pushState({ wb: 1 }, '', url);
  shown = location.pathname + location.search;
}

/** Put `fresh` in place of the current section. Returns false when there is no section to replace. */
function swap(fresh, how, pageUrl) {
  const current = document.getElementById('workbench');
  if (!current || !fresh) return false;
  closeDialog();
  current.replaceWith(fresh);
  pushUrl(pageUrl);
  onSwap(fresh, how);
  return true;
}

async function textOf(res) {
  try {
    return await res.text();
  } catch {
    return '';
  }
}

async function jsonOf(res) {
  try {
    return await res.clone().json();
  } catch {
    return null;
  }
}

function finished(entry) {
  store.remove(PENDING);
  autosave.clear(entry.assignment);
  retryDelay = 1000;
  banner(null);
}

function keep(entry) {
  store.set(PENDING, entry);
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(resendPending, retryDelay);
  retryDelay = Math.min(retryDelay * 2, MAX_DELAY);
}

function showOffline(entry) {
  keep(entry);
  banner('offline', OFFLINE_TEXT);
  scheduleRetry();
}

function showSessionEnded(entry) {
  keep(entry);
  clearTimeout(retryTimer);
  banner('session', SESSION_TEXT, { href: loginUrl(), text: 'Sign in again' });
}

function problem(text) {
  const status = $('#submit-status', itemSection() || document);
  if (status) say(status, text);
  else banner('error', text);
}

/** Is the page showing the item this entry answers (so its reply can replace it in place)? */
function showsItem(entry) {
  const section = itemSection();
  return Boolean(section && section.dataset.assignment === String(entry.assignment));
}

async function handle(entry, res) {
  const status = res.status;
  if (res.type === 'opaqueredirect' || status === 401) return showSessionEnded(entry);
  if (status === 403) {
    const body = await jsonOf(res);
    if (body?.error?.code === 'csrf_failed') return showSessionEnded(entry);
    store.remove(PENDING);
    return problem(body?.error?.message || 'The server refused this answer (403).');
  }
  if (status >= 500 || status === 408 || status === 429) return showOffline(entry);

  if (status === 200) {
    const navigate = res.headers.get('X-Navigate');
    if (navigate) {
      finished(entry);
      return location.assign(navigate);
    }
    const pageUrl = res.headers.get('X-Page-Url');
    const html = await textOf(res);
    const here = showsItem(entry);
    finished(entry);
    if (here && swap(parseSection(html), 'saved', pageUrl)) return;
    if (here || !document.getElementById('workbench')) return location.assign(pageUrl || entry.nextUrl || '/');
    banner('info', 'Your earlier answer was saved.');
    return setTimeout(() => {
      if (document.getElementById('connection-status')?.classList.contains('is-info')) banner(null);
    }, 6000);
  }

  store.remove(PENDING);
  if (status === 400 || status === 409) {
    if (status === 409) autosave.clear(entry.assignment);
    const body = await jsonOf(res);
    if (body?.error) return problem(body.error.message);
    const fresh = parseSection(await textOf(res));
    if (showsItem(entry) && swap(fresh, status === 409 ? 'conflict' : 'errors', null)) return;
    if (status === 400) return location.assign(entry.pageUrl);
    return banner('error', fresh ? fresh.textContent.trim().replace(/\s+/g, ' ') : 'This item was already done.');
  }
  const body = await jsonOf(res);
  return problem(body?.error?.message || `The answer could not be saved (HTTP ${status}).`);
}

async function send(entry) {
  setBusy(true);
  clearTimeout(retryTimer);
  keep(entry);
  const body = new FormData();
  for (const [k, v] of entry.fields) body.append(k, v);
  let res;
  try {
    res = await fetch(entry.url, {
      method: 'POST',
      body,
      headers: fetchHeaders(),
      credentials: 'same-origin',
      redirect: 'manual',
    });
  } catch {
    setBusy(false);
    return showOffline(entry);
  }
  try {
    await handle(entry, res);
  } finally {
    setBusy(false);
  }
}

/** Send a judgment or skip form. A second call while one is on its way does nothing. */
export function submitForm(form, kind) {
  if (inFlight) return false;
  retryDelay = 1000;
  send(entryFrom(form, kind));
  return true;
}

export function pending() {
  return store.get(PENDING);
}

/** Send what a previous page (or a failed attempt) kept, at once. */
export function resendPending() {
  const entry = pending();
  if (!entry || inFlight) return;
  if (!entry.url || !Array.isArray(entry.fields)) {
    store.remove(PENDING);
    return;
  }
  send(entry);
}

/** At page load: resend when signed in; on the sign-in page just say the answer is waiting. */
export function startPending() {
  const entry = pending();
  if (!entry) return;
  if (document.body.dataset.authenticated === '1') {
    resendPending();
  } else {
    banner('session', 'Your answer is kept and will be sent once you have signed in again.');
  }
}

window.addEventListener('online', () => {
  retryDelay = 1000;
  resendPending();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && document.body.dataset.authenticated === '1') resendPending();
});

// --- flag (stays on the item) and loading the next item from a conflict ---------------------------

export async function sendFlag(form) {
  const dialog = form.closest('dialog');
  const note = dialog && (dialog.querySelector('.dialog-error') || document.createElement('p'));
  if (note && !note.isConnected) {
    note.className = 'dialog-error error';
    note.setAttribute('role', 'alert');
    form.append(note);
  }
  const body = new FormData(form);
  body.delete('csrfmiddlewaretoken');
  let res;
  try {
    res = await fetch(new URL(form.action, location.href).pathname, {
      method: 'POST',
      body,
      headers: fetchHeaders(),
      credentials: 'same-origin',
      redirect: 'manual',
    });
  } catch {
    say(note, 'Offline — the flag was not sent. Try again when the connection is back.');
    return;
  }
  const data = await jsonOf(res);
  if (res.status === 200) {
    say(note, '');
    closeDialog(dialog);
    say($('#submit-status'), data?.message || data?.error?.message || 'Flagged.', 6000);
    return;
  }
  if (res.status === 401 || res.type === 'opaqueredirect' || data?.error?.code === 'csrf_failed') {
    say(note, 'Your session has ended — sign in again, then flag the item.');
    return;
  }
  say(note, data?.error?.message || `The flag was not saved (HTTP ${res.status}).`);
}

export async function loadNext(href) {
  try {
    const res = await fetch(href, { headers: fetchHeaders(), credentials: 'same-origin', redirect: 'manual' });
    const navigate = res.headers.get('X-Navigate');
    if (res.status === 200 && !navigate) {
      if (swap(parseSection(await res.text()), 'loaded', res.headers.get('X-Page-Url'))) return;
    }
    location.assign(navigate || href);
  } catch {
    location.assign(href);
  }
}

export function afterSwapFocus(section, how) {
  window.scrollTo(0, 0);
  if (how === 'errors') {
    const reasonError = $('#skip-dialog .error', section);
    const errors = $('.form-errors', section);
    focusBlock(errors);
    if (reasonError && !$('.form-errors li:not([data-field="reason"])', section)) {
      document.getElementById('skip-dialog')?.showModal();
    }
    return;
  }
  if (how === 'conflict') {
    const next = $('a[data-next-item]', section);
    if (next) next.focus();
    else focusBlock(section);
    return;
  }
  focusBlock(section, { preventScroll: true });
  if (how === 'saved') say($('#submit-status', section), 'Saved', 3000);
}
