// Small shared helpers: DOM lookups, storage that never throws, the CSRF cookie, the status banner.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** The current item section, or null when the page shows no item. */
export function itemSection() {
  return document.querySelector('#workbench[data-state="item"]');
}

// localStorage can be full, disabled or blocked: losing an autosave must never break judging.
export const store = {
  get(key) {
    try {
      const raw = localStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch {
      return false;
    }
  },
  remove(key) {
    try {
      localStorage.removeItem(key);
    } catch {
      /* nothing kept, nothing to remove */
    }
  },
  keys(prefix) {
    try {
      return Object.keys(localStorage).filter((k) => k.startsWith(prefix));
    } catch {
      return [];
    }
  },
};

/** Read at send time, never cached: Django rotates the token when the annotator signs in again. */
export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === 'csrftoken') return decodeURIComponent(rest.join('='));
  }
  return '';
}

const TEXT_INPUTS = new Set([
  'text', 'search', 'email', 'password', 'number', 'url', 'tel', 'date', 'datetime-local', 'month',
  'week', 'time', 'color', 'file',
]);

/** True when the element takes typed text, so single-key shortcuts must stay out of its way. */
export function isTyping(el) {
  if (!el || el.nodeType !== 1) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  return tag === 'INPUT' && TEXT_INPUTS.has((el.type || 'text').toLowerCase());
}

/** Check a radio or checkbox as if the annotator clicked it (so change listeners run). */
export function check(input, value = true) {
  if (!input || input.checked === value) return;
  input.checked = value;
  input.dispatchEvent(new Event('change', { bubbles: true }));
}

/** Show a short message in an element; `ms` clears it again (0 keeps it). */
export function say(el, text, ms = 0) {
  if (!el) return;
  el.textContent = text;
  clearTimeout(el._sayTimer);
  if (ms) el._sayTimer = setTimeout(() => { el.textContent = ''; }, ms);
}

/**
 * The connection banner at the bottom of every page. `link` is {href, text} or null. Text only:
 * nothing here is ever parsed as HTML.
 */
export function banner(kind, text, link = null) {
  const el = document.getElementById('connection-status');
  if (!el) return;
  if (!kind) {
    el.hidden = true;
    el.replaceChildren();
    el.className = 'connection-status';
    return;
  }
  const msg = document.createElement('span');
  msg.textContent = text;
  el.replaceChildren(msg);
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.textContent = link.text;
    el.append(' ', a);
  }
  el.className = `connection-status is-${kind}`;
  el.hidden = false;
}

/** Focus something that is not normally focusable (a section, an error box) without a tab stop. */
export function focusBlock(el, opts = {}) {
  if (!el) return;
  if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
  el.focus(opts);
}
