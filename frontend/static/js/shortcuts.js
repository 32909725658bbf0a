// Keyboard: every action of the item page has a key (listed in workbench/_keys.html; keep both in step).
// Keys are ignored while typing in a field, while a dialog is open (Esc excepted: the dialog closes
// itself), and with Ctrl / Alt / Meta held, so browser and system shortcuts keep working.

import { $, $$, check, focusBlock, isTyping, itemSection } from './util.js';
import { showDialog, openDialog } from './dialogs.js';
import * as ranking from './ranking.js';
import * as safety from './safety.js';

const STRENGTH_KEYS = new Set(['q', 'w', 'e', 'r']);

/** Show the raw text (true), the rendered text (false) or flip (undefined) in one card or turn. */
export function setRaw(box, raw) {
  const rendered = $(':scope > .rendered', box);
  const plain = $(':scope > .raw', box);
  if (!rendered || !plain) return false;
  const show = raw === undefined ? plain.hidden : raw;
  plain.hidden = !show;
  rendered.hidden = show;
  box.classList.toggle('is-raw', show);
  const toggle = $('.raw-toggle', box);
  if (toggle) {
    toggle.setAttribute('aria-pressed', String(show));
    toggle.textContent = show ? 'Formatted' : 'Raw';
    toggle.title = show ? 'Show the formatted text (T)' : 'Show the raw text (T)';
  }
  return show;
}

export function toggleAllRaw(section) {
  const boxes = $$('.conversation .turn, #responses > .response-card', section);
  const anyRaw = boxes.some((b) => b.classList.contains('is-raw'));
  for (const b of boxes) setRaw(b, !anyRaw);
}

function pairwiseCard(section, label) {
  return $(`#responses > .response-card[data-label="${label}"]`, section);
}

function choose(section, label) {
  check($(`input[name="chosen"][data-label="${label}"]`, section));
}

export function submitCurrent(section) {
  const form = $('#judgment-form', section);
  if (form) form.requestSubmit();
}

function leaveTextarea(section) {
  document.activeElement.blur();
  focusBlock($('#judgment-form', section) || section, { preventScroll: true });
}

function handleItemKey(e, section, key) {
  const pairwise = section.dataset.mode === 'pairwise';
  const isSafety = section.dataset.track === 'safety';

  if (key === 'enter') {
    // Enter on a button or a link does what that control does.
    if (e.target.closest?.('button, a, summary, [role="button"]')) return false;
    if (e.repeat) return true;
    submitCurrent(section);
    return true;
  }
  if (key === '?') return Boolean(showDialog('help-dialog'));
  if (key === 's') return Boolean(showDialog('skip-dialog'));
  if (key === 'f') return Boolean(showDialog('flag-dialog'));
  if (key === 't') {
    toggleAllRaw(section);
    return true;
  }
  if (key === 'g') {
    const url = section.dataset.guidelinesUrl;
    if (url) location.assign(url);
    return Boolean(url);
  }

  if (pairwise) {
    if (key === 'a' || key === '1') return choose(section, 'A'), true;
    if (key === 'b' || key === '2') return choose(section, 'B'), true;
    if (STRENGTH_KEYS.has(key)) {
      const radio = $(`input[name="strength"][data-key="${key}"]`, section);
      check(radio);
      return Boolean(radio);
    }
    if (isSafety) {
      const map = { z: ['A', 'safe'], x: ['A', 'unsafe'], n: ['B', 'safe'], m: ['B', 'unsafe'] };
      if (map[key]) return safety.setLabel(section, pairwiseCard(section, map[key][0]), map[key][1]);
    }
    return false;
  }

  // ranking
  if (/^[1-9]$/.test(key)) return ranking.selectRank(section, Number(key));
  if (key === 'arrowup' || key === 'k') return ranking.moveSelected(section, -1) || Boolean(ranking.selected(section));
  if (key === 'arrowdown' || key === 'j') return ranking.moveSelected(section, 1) || Boolean(ranking.selected(section));
  if (key === 'o') {
    ranking.confirmOrder(section);
    return true;
  }
  if (isSafety && (key === 'y' || key === 'u')) {
    const card = ranking.selected(section);
    return safety.setLabel(section, card, key === 'y' ? 'safe' : 'unsafe');
  }
  return false;
}

export function onKeyDown(e) {
  if (e.defaultPrevented || e.isComposing) return;
  const section = itemSection();
  if (!section) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key.toLowerCase();

  if (openDialog()) return; // the dialog's own Esc handling closes it
  const target = e.target;

  if (isTyping(target)) {
    if (target.tagName === 'TEXTAREA' && target.closest('#judgment-form')) {
      if (key === 'enter' && (e.ctrlKey || e.metaKey) && !e.altKey) {
        e.preventDefault();
        if (!e.repeat) submitCurrent(section);
      } else if (key === 'escape') {
        e.preventDefault();
        leaveTextarea(section);
      }
    }
    return;
  }
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  if (handleItemKey(e, section, key)) e.preventDefault();
}
