// Entry module, loaded on every page. Listeners are delegated on the document once; the per-item state
// (ranking order, safety bin, autosave, clock) is set up by initSection() for `#workbench[data-state=item]`
// at load and again each time a submit swaps in the next item.

import { $, $$, itemSection, say } from './util.js';
import * as autosave from './autosave.js';
import * as ranking from './ranking.js';
import * as safety from './safety.js';
import * as submit from './submit.js';
import { closeDialog, showDialog } from './dialogs.js';
import { onKeyDown, setRaw } from './shortcuts.js';

function markChosen(section) {
  const chosen = $('input[name="chosen"]:checked', section);
  for (const card of $$('#responses > .response-card', section)) {
    card.classList.toggle('is-chosen', Boolean(chosen) && card.dataset.responseId === chosen.value);
  }
}

function refresh(section) {
  markChosen(section);
  safety.updateSafety(section);
}

export function initSection(section) {
  if (!section || section.dataset.state !== 'item' || section.dataset.ready === '1') return;
  section.dataset.ready = '1';
  ranking.initRanking(section);
  autosave.restore(section);
  refresh(section);
  autosave.save(section);
}

function onSwapped(section, how) {
  initSection(section);
  submit.afterSwapFocus(section, how);
}

// --- delegated listeners ----------------------------------------------------------------------------

function onChange(e) {
  const section = itemSection();
  if (!section || !section.contains(e.target) || !e.target.closest('#judgment-form')) return;
  refresh(section);
  if (e.type === 'input') autosave.saveSoon(section);
  else autosave.save(section);
}

function onClick(e) {
  const el = e.target.closest?.('button, a, .response-card');
  if (!el) return;
  const section = itemSection();

  if (el.matches('a[data-next-item]')) {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    submit.loadNext(el.href);
    return;
  }
  if (!section || !section.contains(el)) return;

  if (el.matches('[data-action="close-dialog"]')) {
    closeDialog(el.closest('dialog'));
  } else if (el.matches('[data-action="help"]')) {
    showDialog('help-dialog');
  } else if (el.matches('[data-action="skip"]')) {
    showDialog('skip-dialog');
  } else if (el.matches('[data-action="flag"]')) {
    showDialog('flag-dialog');
  } else if (el.matches('.raw-toggle')) {
    setRaw(el.closest('.response-card, .turn'));
  } else if (el.matches('[data-move]')) {
    const card = el.closest('.response-card');
    ranking.move(section, card, el.dataset.move === 'up' ? -1 : 1);
    el.focus(); // the button stays under the pointer's card, ready for the next press
  } else if (el.matches('#confirm-order')) {
    ranking.confirmOrder(section);
  } else if (el.matches('.response-card') && section.dataset.mode === 'ranking') {
    ranking.select(section, el, { focus: false });
  }
}

function onSubmit(e) {
  const form = e.target;
  const section = itemSection();
  if (!section || !section.contains(form)) return;
  if (form.id === 'judgment-form') {
    e.preventDefault();
    const missing = safety.missingConfirmation(section);
    if (missing) {
      say($('#submit-status', section), 'Tick the box to confirm you prefer the response labelled unsafe.');
      missing.focus();
      return;
    }
    const time = form.elements.namedItem('time_spent_ms');
    if (time) time.value = String(Math.min(autosave.elapsedMs(), 86400000)); // the server's ceiling: 24 h
    autosave.save(section);
    submit.submitForm(form, 'submit');
  } else if (form.id === 'skip-form') {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.submitForm(form, 'skip');
  } else if (form.id === 'flag-form') {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.sendFlag(form);
  }
}

function onFocusIn(e) {
  const section = itemSection();
  const card = e.target.closest?.('#responses > .response-card');
  if (section && card && e.target === card && section.dataset.mode === 'ranking') {
    ranking.select(section, card, { focus: false });
  }
}

function start() {
  document.addEventListener('keydown', onKeyDown);
  document.addEventListener('click', onClick);
  document.addEventListener('change', onChange);
  document.addEventListener('input', onChange);
  document.addEventListener('submit', onSubmit);
  document.addEventListener('focusin', onFocusIn);
  ranking.installDragAndDrop(document);
  // Back / forward across items swapped in by script: let the server decide what that URL shows now.
  window.addEventListener('popstate', () => {
    if (location.pathname + location.search !== submit.shownUrl()) location.reload();
  });
  submit.configure({ swapped: onSwapped });
  autosave.prune();
  initSection(itemSection());
  submit.startPending();
}

start();
