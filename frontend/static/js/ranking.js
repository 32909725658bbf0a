// Ranking mode: order the K response cards best first, by keyboard, by the up/down buttons or by drag and
// drop. `#ranking-input` stays empty until the annotator moved a card or confirmed the order: the server
// refuses an untouched ranking on purpose, so the order shown (random per annotator) is never taken as-is.

import { $, $$, itemSection } from './util.js';

const list = (section) => $('#responses', section);
export const cards = (section) => $$('#responses > .response-card', section);
const isRanking = (section) => section && section.dataset.mode === 'ranking';

function input(section) {
  return $('#ranking-input', section);
}

function announce(section, text) {
  const status = $('#ranking-status', section);
  if (status) status.textContent = text;
}

/** Rank badges (#1..#K), the <kbd> digit that selects each card, and the accessible names. */
export function renumber(section) {
  cards(section).forEach((card, i) => {
    const rank = String(i + 1);
    const badge = $('.rank-badge', card);
    if (badge) badge.textContent = `#${rank}`;
    const kbd = $('.response-head h2 kbd', card);
    if (kbd) kbd.textContent = rank;
    card.setAttribute('aria-label', `Response ${card.dataset.label}, rank ${rank} of ${cards(section).length}`);
  });
}

export function currentOrder(section) {
  return cards(section).map((c) => c.dataset.responseId);
}

/** Put the cards in the order of `ids`; ignored unless it names exactly this item's responses. */
export function applyOrder(section, ids) {
  const box = list(section);
  const byId = new Map(cards(section).map((c) => [c.dataset.responseId, c]));
  const wanted = (ids || []).map(String).filter(Boolean);
  if (wanted.length !== byId.size || !wanted.every((id) => byId.has(id)) || new Set(wanted).size !== byId.size) {
    return false;
  }
  for (const id of wanted) box.append(byId.get(id));
  renumber(section);
  return true;
}

/** Record the on-screen order as the annotator's ranking, and tell autosave. */
function commit(section, message) {
  const field = input(section);
  if (!field) return;
  field.value = currentOrder(section).join(',');
  renumber(section);
  announce(section, message);
  section.classList.add('is-ranked');
  field.dispatchEvent(new Event('change', { bubbles: true }));
}

export function confirmOrder(section = itemSection()) {
  if (!isRanking(section)) return;
  const labels = cards(section).map((c) => c.dataset.label).join(', ');
  commit(section, `Order confirmed, best first: ${labels}.`);
}

export function selected(section) {
  return $('#responses > .response-card.is-selected', section);
}

export function select(section, card, { focus = true } = {}) {
  if (!card) return;
  for (const c of cards(section)) {
    const on = c === card;
    c.classList.toggle('is-selected', on);
    if (on) c.setAttribute('aria-current', 'true');
    else c.removeAttribute('aria-current');
  }
  if (focus && document.activeElement !== card) card.focus({ preventScroll: true });
  if (focus) card.scrollIntoView({ block: 'nearest' });
}

export function selectRank(section, n) {
  const card = cards(section)[n - 1];
  if (card) select(section, card);
  return Boolean(card);
}

/**
 * Move `card` one place up (-1) or down (+1). The neighbour moves instead of the card, so the focused
 * card never leaves the document and keeps its focus.
 */
export function move(section, card, dir) {
  if (!isRanking(section) || !card) return false;
  const all = cards(section);
  const i = all.indexOf(card);
  const j = i + dir;
  if (i < 0 || j < 0 || j >= all.length) {
    announce(section, `Response ${card.dataset.label} is already ${dir < 0 ? 'first' : 'last'}.`);
    return false;
  }
  const other = all[j];
  if (dir < 0) card.after(other);
  else card.before(other);
  select(section, card);
  commit(section, `Response ${card.dataset.label} moved to rank ${j + 1} of ${all.length}.`);
  return true;
}

export function moveSelected(section, dir) {
  const card = selected(section) || document.activeElement?.closest?.('#responses > .response-card');
  return move(section, card, dir);
}

export function initRanking(section) {
  if (!isRanking(section)) return;
  const field = input(section);
  // A value on load is the server re-rendering the form after an error: show the order it kept.
  if (field && field.value) {
    if (applyOrder(section, field.value.split(','))) section.classList.add('is-ranked');
  }
  renumber(section);
}

// --- drag and drop (HTML5), delegated on the document so swapped sections need no rebinding ------

let dragging = null;

function clearMarks(section) {
  for (const c of cards(section)) c.classList.remove('drop-before', 'drop-after');
}

function dropTarget(e) {
  const section = itemSection();
  if (!dragging || !isRanking(section)) return null;
  const card = e.target.closest?.('#responses > .response-card');
  if (!card || card === dragging) return { section, card: null };
  const box = card.getBoundingClientRect();
  return { section, card, after: e.clientY > box.top + box.height / 2 };
}

export function installDragAndDrop(root = document) {
  root.addEventListener('dragstart', (e) => {
    const card = e.target.closest?.('#responses > .response-card[draggable="true"]');
    const section = itemSection();
    // A drag that starts on a button or a selection of text inside the card is not a reorder.
    if (!card || !isRanking(section) || e.target !== card) return;
    dragging = card;
    card.classList.add('is-dragging');
    select(section, card, { focus: false });
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', `response ${card.dataset.label}`);
  });
  root.addEventListener('dragover', (e) => {
    const t = dropTarget(e);
    if (!t) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    clearMarks(t.section);
    if (t.card) t.card.classList.add(t.after ? 'drop-after' : 'drop-before');
  });
  root.addEventListener('drop', (e) => {
    const t = dropTarget(e);
    if (!t) return;
    e.preventDefault();
    clearMarks(t.section);
    if (!t.card) return;
    const before = currentOrder(t.section).join(',');
    if (t.after) t.card.after(dragging);
    else t.card.before(dragging);
    if (currentOrder(t.section).join(',') !== before) {
      const rank = cards(t.section).indexOf(dragging) + 1;
      commit(t.section, `Response ${dragging.dataset.label} moved to rank ${rank} of ${cards(t.section).length}.`);
    }
    dragging.focus({ preventScroll: true });
  });
  root.addEventListener('dragend', () => {
    if (!dragging) return;
    dragging.classList.remove('is-dragging');
    const section = itemSection();
    if (section) clearMarks(section);
    dragging = null;
  });
}
