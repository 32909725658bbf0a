// Modal dialogs (skip, flag, keyboard help): native <dialog> with showModal(), focus given back on close.

import { $ } from './util.js';

export const openDialog = () => document.querySelector('dialog[open]');

export function showDialog(id) {
  const dialog = document.getElementById(id);
  if (!dialog || dialog.open) return dialog;
  const opener = document.activeElement;
  dialog.addEventListener(
    'close',
    () => {
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus({ preventScroll: true });
    },
    { once: true },
  );
  dialog.showModal();
  const first = $('[autofocus], input:not([type="hidden"]), select, textarea, button', dialog);
  if (first) first.focus();
  return dialog;
}

export function closeDialog(dialog = openDialog()) {
  if (dialog && dialog.open) dialog.close();
}
