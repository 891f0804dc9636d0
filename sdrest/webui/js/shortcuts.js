// Keyboard shortcuts: Ctrl+Enter (or Cmd+Enter) generates, from anywhere, text fields included; Esc cancels the
// current job, but never from inside a text field or an open dialog (there Esc keeps its usual meaning).

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || target.matches('input:not([type=checkbox]):not([type=radio]):not([type=button]), textarea, select'));
}

/** Install the shortcuts: `generate()` for Ctrl+Enter, `cancelCurrent()` for Esc. */
export function setupShortcuts({ generate, cancelCurrent, enabled }) {
  document.addEventListener('keydown', (event) => {
    if (!enabled()) return;
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      generate();
    } else if (event.key === 'Escape' && !event.ctrlKey && !event.metaKey && !event.altKey) {
      if (typing(event.target) || document.querySelector('dialog[open]')) return;
      event.preventDefault();
      cancelCurrent();
    }
  });
}
