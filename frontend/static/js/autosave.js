// Autosave: the answer in progress lives in localStorage under `wb:a:<assignment id>` from the first change
// until the submit or skip went through, so a reload, a crash or a new sign-in loses nothing. The time the
// page was visible is kept with it, so a reload keeps counting instead of starting again.

import { $, $$, store } from './util.js';
import { applyOrder, cards } from './ranking.js';

const PREFIX = 'wb:a:';
const MAX_AGE_MS = 14 * 24 * 3600 * 1000;

export const keyFor = (assignment) => `${PREFIX}${assignment}`;

// --- time on the item: only while the page is visible ------------------------------------------

const timer = { assignment: null, baseMs: 0, since: null };

function visible() {
  return document.visibilityState === 'visible';
}

export function elapsedMs() {
  return Math.round(timer.baseMs + (timer.since === null ? 0 : performance.now() - timer.since));
}

function startTimer(assignment, baseMs) {
  timer.assignment = assignment;
  timer.baseMs = Math.max(0, Number(baseMs) || 0);
  timer.since = visible() ? performance.now() : null;
}

document.addEventListener('visibilitychange', () => {
  if (!timer.assignment) return;
  if (visible()) {
    timer.since = performance.now();
  } else {
    timer.baseMs = elapsedMs();
    timer.since = null;
    save();
  }
});

// --- the answer ---------------------------------------------------------------------------------

function sectionFor(assignment) {
  const s = document.getElementById('workbench');
  return s && s.dataset.state === 'item' && s.dataset.assignment === String(assignment) ? s : null;
}

export function collect(section) {
  const form = $('#judgment-form', section);
  if (!form) return null;
  const val = (sel) => $(sel, form)?.value ?? '';
  const safety = {};
  for (const r of $$('input[type="radio"][name^="safety_"]:checked', form)) safety[r.name.slice(7)] = r.value;
  return {
    v: 1,
    chosen: val('input[name="chosen"]:checked'),
    strength: val('input[name="strength"]:checked'),
    ranking: val('#ranking-input'),
    order: cards(section).map((c) => c.dataset.responseId),
    safety,
    rationale: val('textarea[name="rationale"]'),
    confirm: Boolean($('input[name="confirm_unsafe_choice"]', form)?.checked),
    timeMs: elapsedMs(),
    savedAt: Date.now(),
  };
}

export function save(section = sectionFor(timer.assignment)) {
  if (!section) return;
  const state = collect(section);
  if (state) store.set(keyFor(section.dataset.assignment), state);
}

let debounce = null;
export function saveSoon(section) {
  clearTimeout(debounce);
  debounce = setTimeout(() => save(section), 250);
}

export function clear(assignment) {
  store.remove(keyFor(assignment));
  if (String(timer.assignment) === String(assignment)) {
    timer.assignment = null;
    timer.since = null;
  }
}

function setRadio(form, name, value) {
  if (!value) return;
  for (const r of $$(`input[type="radio"][name="${name}"]`, form)) r.checked = r.value === String(value);
}

function apply(section, state) {
  const form = $('#judgment-form', section);
  if (!form || !state) return;
  setRadio(form, 'chosen', state.chosen);
  setRadio(form, 'strength', state.strength);
  for (const [id, label] of Object.entries(state.safety || {})) {
    if (/^\d+$/.test(id)) setRadio(form, `safety_${id}`, label);
  }
  const text = $('textarea[name="rationale"]', form);
  if (text && typeof state.rationale === 'string') text.value = state.rationale;
  const tick = $('input[name="confirm_unsafe_choice"]', form);
  if (tick) tick.checked = Boolean(state.confirm);
  const rank = $('#ranking-input', form);
  if (rank && state.ranking && applyOrder(section, String(state.ranking).split(','))) {
    rank.value = state.ranking;
    section.classList.add('is-ranked');
  }
}

/**
 * Start the clock for this section's assignment and put back what was kept. A section re-rendered by the
 * server after an error already carries the annotator's choices; only the clock is restored then.
 * Returns true when an answer was restored.
 */
export function restore(section) {
  const assignment = section.dataset.assignment;
  const state = store.get(keyFor(assignment));
  if (timer.assignment !== assignment) startTimer(assignment, state?.timeMs);
  if (!state || $('.form-errors', section)) return false;
  apply(section, state);
  return true;
}

/** Forget answers of items that were never finished here (another device, an expired lease). */
export function prune() {
  const now = Date.now();
  for (const key of store.keys(PREFIX)) {
    const state = store.get(key);
    if (!state || !(now - state.savedAt < MAX_AGE_MS)) store.remove(key);
  }
}

window.addEventListener('pagehide', () => save());
setInterval(() => {
  if (timer.assignment && visible()) save();
}, 10000);
