// Light and dark themes: the system's by default, or the one chosen with the toggle (kept in localStorage).

const KEY = 'sdrest.theme';
const ORDER = ['system', 'light', 'dark'];
const LABEL = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };
const ICON = { system: '◐', light: '☀', dark: '☾' };

function current() {
  const saved = localStorage.getItem(KEY);
  return ORDER.includes(saved) ? saved : 'system';
}

function apply(theme, button) {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  button.setAttribute('aria-label', LABEL[theme]);
  button.title = `${LABEL[theme]} (click to change)`;
  button.textContent = ICON[theme];
}

/** Apply the saved theme and make `button` cycle system -> light -> dark. */
export function setupTheme(button) {
  apply(current(), button);
  button.addEventListener('click', () => {
    const next = ORDER[(ORDER.indexOf(current()) + 1) % ORDER.length];
    localStorage.setItem(KEY, next);
    apply(next, button);
  });
}
