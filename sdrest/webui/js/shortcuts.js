// Keyboard shortcuts: Ctrl+Enter (or Cmd+Enter) generates, from anywhere, text fields included; Esc cancels the
// current job, but never from inside a text field or an open dialog (there Esc keeps its usual meaning);
// Ctrl+Up/Down changes the (word:1.1) weight under the cursor in the prompt fields (AUTOMATIC1111's way); ? lists
// the shortcuts (outside text fields).

import { h } from './dom.js';

/** The prompt fields Ctrl+Up/Down works in, by their labels. */
const PROMPT_LABELS = new Set(['Prompt', 'Negative prompt']);
const STEP = 0.1;
/** What ends a word when nothing is selected (A1111's default delimiters). */
const DELIMITERS = '.,\\/!?%^*;:{}=`~() \t\r\n';

export const SHORTCUTS = [
  ['Ctrl+Enter', 'Generate (anywhere, text fields included)'],
  ['Esc', 'Cancel the current job (outside text fields); close a dialog'],
  ['Ctrl+↑ / Ctrl+↓', 'In a prompt: raise or lower the weight of the word or (group:1.1) under the cursor by 0.1'],
  ['?', 'Show these shortcuts (outside text fields)'],
  ['Tab', 'Move through the controls'],
];

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || target.matches('input:not([type=checkbox]):not([type=radio]):not([type=button]), textarea, select'));
}

function isPromptField(target) {
  return target instanceof HTMLTextAreaElement && [...(target.labels || [])].some((l) => PROMPT_LABELS.has(l.textContent.trim()));
}

/** The (open, close) group around an empty selection at `at`: the range of its text before any ":weight". */
function groupAround(text, at, open, close) {
  const before = text.slice(0, at);
  const start = before.lastIndexOf(open);
  if (start === -1 || before.lastIndexOf(close) > start) return null;
  const after = text.slice(at);
  const end = after.indexOf(close);
  if (end === -1 || (after.indexOf(open) !== -1 && after.indexOf(open) < end)) return null;
  const content = text.slice(start + 1, at + end);
  const colon = /:-?[\d.]+$/.test(content) ? content.lastIndexOf(':') : content.length;
  return [start + 1, start + 1 + colon];
}

/** The word around an empty selection at `at`, without surrounding spaces. */
function wordAround(text, at) {
  let start = at;
  let end = at;
  while (start > 0 && !DELIMITERS.includes(text[start - 1])) start--;
  while (end < text.length && !DELIMITERS.includes(text[end])) end++;
  return [start, end];
}

/**
 * Raise (`up`) or lower the attention weight of the selection [start, end) of `text`, AUTOMATIC1111's way: an
 * empty selection takes the <lora:…> or (group) or word around it; a word without a group becomes (word:1.1);
 * a group whose weight comes back to 1.0 loses its parentheses. Returns {text, start, end} (the new selection
 * is the group's text), or null when there is nothing to change.
 */
export function editWeight(text, start, end, up) {
  if (start === end) {
    [start, end] = groupAround(text, start, '<', '>') || groupAround(text, start, '(', ')') || wordAround(text, start);
  }
  while (end > start && text[end - 1] === ' ') end--;
  while (start < end && text[start] === ' ') start++;
  if (start === end) return null;
  let close = ')';
  const opener = text[start - 1];
  if (opener === '<') close = '>';
  else if (opener !== '(' || text[end] !== ':') {
    if (opener === '(' && text[end] === ')') {  // (word) without a weight: give it one
      text = `${text.slice(0, end)}:1.0${text.slice(end)}`;
    } else {
      text = `${text.slice(0, start)}(${text.slice(start, end)}:1.0)${text.slice(end)}`;
      start += 1;
      end += 1;
    }
  }
  if (text[end] !== ':') return null;
  const length = text.slice(end + 1).indexOf(close);
  if (length === -1) return null;
  let weight = parseFloat(text.slice(end + 1, end + 1 + length));
  if (Number.isNaN(weight)) return null;
  weight = parseFloat((weight + (up ? STEP : -STEP)).toPrecision(12));
  const shown = Number.isInteger(weight) ? weight.toFixed(1) : String(weight);
  if (close === ')' && weight === 1) {
    text = text.slice(0, start - 1) + text.slice(start, end) + text.slice(end + 1 + length + 1);
    return { text, start: start - 1, end: end - 1 };
  }
  text = text.slice(0, end + 1) + shown + text.slice(end + 1 + length);
  return { text, start, end };
}

function changeWeight(field, up) {
  const edit = editWeight(field.value, field.selectionStart, field.selectionEnd, up);
  if (!edit) return;
  field.value = edit.text;
  field.setSelectionRange(edit.start, edit.end);
  field.dispatchEvent(new Event('input', { bubbles: true }));  // the form saves and follows its own events
}

let helpDialog = null;

/** The dialog that lists the shortcuts (Esc or Close closes it). */
export function showShortcuts() {
  if (!helpDialog) {
    helpDialog = h('dialog', { class: 'viewer shortcuts-dialog', 'aria-labelledby': 'shortcuts-title' },
      h('div', { class: 'viewer-head' }, h('h2', { id: 'shortcuts-title' }, 'Keyboard shortcuts'),
        h('button', { type: 'button', class: 'ghost', onclick: () => helpDialog.close() }, 'Close')),
      h('table', { class: 'shortcuts' }, h('tbody', {}, SHORTCUTS.map(([keys, what]) => h('tr', {},
        h('th', { scope: 'row' }, keys.split(' / ').flatMap((combo, i) => [i ? ' / ' : '',
          ...combo.split('+').flatMap((key, j) => [j ? '+' : '', h('kbd', {}, key)])])),
        h('td', {}, what))))));
    document.body.append(helpDialog);
  }
  if (!helpDialog.open) helpDialog.showModal();
}

/** Install the shortcuts: `generate()` for Ctrl+Enter, `cancelCurrent()` for Esc. */
export function setupShortcuts({ generate, cancelCurrent, enabled }) {
  document.addEventListener('keydown', (event) => {
    const ctrl = event.ctrlKey || event.metaKey;
    if ((event.key === 'ArrowUp' || event.key === 'ArrowDown') && ctrl && !event.altKey && !event.shiftKey
        && isPromptField(event.target)) {
      event.preventDefault();
      changeWeight(event.target, event.key === 'ArrowUp');
      return;
    }
    if (event.key === '?' && !ctrl && !event.altKey && !typing(event.target) && !document.querySelector('dialog[open]')) {
      event.preventDefault();
      showShortcuts();
      return;
    }
    if (!enabled()) return;
    if (event.key === 'Enter' && ctrl) {
      event.preventDefault();
      generate();
    } else if (event.key === 'Escape' && !ctrl && !event.altKey) {
      if (typing(event.target) || document.querySelector('dialog[open]')) return;
      event.preventDefault();
      cancelCurrent();
    }
  });
}
