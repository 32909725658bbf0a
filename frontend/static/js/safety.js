// Safety track: a safe / unsafe label per response and, in pairwise mode, LLaMa-2's safety bin. The fourth
// bin (chosen unsafe, other safe) needs an explicit confirmation: the server refuses it without one too.

import { $, $$, check } from './util.js';

export const BINS = {
  chosen_safe_other_unsafe: 'Chosen safe, other unsafe',
  both_safe: 'Both safe',
  both_unsafe: 'Both unsafe',
  chosen_unsafe_other_safe: 'Chosen unsafe, other safe',
};

const isSafety = (section) => section && section.dataset.track === 'safety';

export function labelOf(section, responseId) {
  const radio = $(`input[name="safety_${responseId}"]:checked`, section);
  return radio ? radio.value : '';
}

/** Label the response shown as `label` ("A", "B"...) or the card given. */
export function setLabel(section, card, value) {
  if (!isSafety(section) || !card) return false;
  const radio = $(`input[name="safety_${card.dataset.responseId}"][value="${value}"]`, section);
  check(radio);
  return Boolean(radio);
}

export function computeBin(section) {
  if (!isSafety(section) || section.dataset.mode !== 'pairwise') return '';
  const chosen = $('input[name="chosen"]:checked', section);
  if (!chosen) return '';
  const other = $$('.response-card', section).find((c) => c.dataset.responseId !== chosen.value);
  const a = labelOf(section, chosen.value);
  const b = other ? labelOf(section, other.dataset.responseId) : '';
  if (!a || !b) return '';
  if (a === 'safe') return b === 'safe' ? 'both_safe' : 'chosen_safe_other_unsafe';
  return b === 'safe' ? 'chosen_unsafe_other_safe' : 'both_unsafe';
}

/** Refresh the bin line, the card colours and the confirmation box after any change. */
export function updateSafety(section) {
  if (!isSafety(section)) return;
  for (const card of $$('.response-card', section)) {
    const label = labelOf(section, card.dataset.responseId);
    card.classList.toggle('label-safe', label === 'safe');
    card.classList.toggle('label-unsafe', label === 'unsafe');
  }
  const out = $('#safety-bin', section);
  const bin = computeBin(section);
  if (out) {
    if (section.dataset.mode === 'pairwise') {
      out.textContent = bin ? BINS[bin] : '— (choose a response and label both)';
    } else {
      const all = $$('.response-card', section);
      const done = all.filter((c) => labelOf(section, c.dataset.responseId)).length;
      out.textContent = `${done} of ${all.length} responses labelled`;
    }
    out.dataset.bin = bin;
  }
  const box = $('#confirm-unsafe', section);
  if (box) {
    const needed = bin === 'chosen_unsafe_other_safe';
    box.hidden = !needed;
    // A confirmation given for another combination must not carry over silently.
    if (!needed) check($('input[name="confirm_unsafe_choice"]', box), false);
  }
}

/** Client-side guard before a submit; returns the element to focus when something is missing. */
export function missingConfirmation(section) {
  if (!isSafety(section)) return null;
  const box = $('#confirm-unsafe', section);
  const tick = box && $('input[name="confirm_unsafe_choice"]', box);
  if (box && !box.hidden && tick && !tick.checked) return tick;
  return null;
}
