// The account: the log-in form when auth is on, and the signed-in user with a log-out button.

import { ApiError, get, post } from '../api.js';
import { h } from '../dom.js';
import { read, write } from '../store.js';

/** Whether the browser holds a session (its CSRF cookie is readable; the session cookie is not). */
function hasSession() {
  return document.cookie.split(';').some((part) => part.trim().startsWith('sdrest_csrf='));
}

/** Who the browser is (/api/auth/me), or null when not signed in. `auth` (/api/status's) spares the
 * question, and the 401 a browser would log, where logging in is needed and no session exists. */
export async function whoAmI(auth = null) {
  if (auth && auth.login && auth.mode !== 'optional' && !hasSession()) return null;
  try {
    return await get('/api/auth/me', { quiet401: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export class AccountView {
  constructor(slot, loginSection, { onLogin, onLogout, onLeaving }) {
    this.onLeaving = onLeaving;
    this.slot = slot;
    this.section = loginSection;
    this.form = loginSection.querySelector('form');
    this.error = loginSection.querySelector('.field-error');
    this.onLogin = onLogin;
    this.onLogout = onLogout;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.login();
    });
  }

  /** Draw the header's account corner: the user and, where logging in exists, a log-out button. */
  render() {
    const me = read('me');
    if (!me) {
      this.slot.replaceChildren();
      return;
    }
    this.slot.replaceChildren(
      h('span', { class: 'user', title: `Signed in as ${me.username} (${me.role})` },
        h('span', { class: 'user-name' }, me.username), me.role === 'admin' ? h('span', { class: 'badge' }, 'admin') : null),
      me.login ? h('button', { type: 'button', class: 'ghost', onclick: () => this.logout() }, 'Log out') : null);
  }

  /** Show the log-in form, with `message` (why) above it. */
  showLogin(message = '') {
    this.section.hidden = false;
    this.error.textContent = message;
    this.error.hidden = !message;
    this.form.querySelector('input[name="username"]').focus();
  }

  async login() {
    const data = new FormData(this.form);
    this.error.hidden = true;
    try {
      await post('/api/auth/login', { username: data.get('username'), password: data.get('password'), cookie: true },
        { quiet401: true });
      const me = await whoAmI();
      write('me', me);
      this.form.reset();
      this.section.hidden = true;
      this.onLogin(me);
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
  }

  async logout() {
    this.onLeaving();
    try {
      await post('/api/auth/logout');
    } finally {
      write('me', null);
      this.onLogout();
    }
  }
}
