// The account: the log-in form when auth is on, the signed-in user with a log-out button, and the Account
// dialog: who one is and one's API keys (list, create: the secret shown once with a copy button, revoke).

import { ApiError, get, post, request } from '../api.js';
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
      h('button', { type: 'button', class: 'ghost user', title: `Signed in as ${me.username} (${me.role})`,
        'aria-label': `Account: ${me.username}`, 'aria-haspopup': 'dialog', onclick: () => this.openAccount() },
      h('span', { class: 'user-initial', 'aria-hidden': 'true' }, me.username.charAt(0).toUpperCase()),
      h('span', { class: 'user-name' }, me.username), me.role === 'admin' ? h('span', { class: 'badge' }, 'admin') : null),
      me.login ? h('button', { type: 'button', class: 'ghost logout', onclick: () => this.logout() }, 'Log out') : null);
  }

  /** The Account dialog: the user, and their API keys. */
  async openAccount() {
    const me = read('me');
    if (!this.dialog) {
      this.dialog = h('dialog', { class: 'viewer account-dialog', 'aria-labelledby': 'account-title' });
      document.body.append(this.dialog);
    }
    this.secret = null;
    this.keys = null;
    this.keyError = '';
    // one input for the dialog's life: a redraw (the keys arriving) keeps what is being typed
    this.label = h('input', { id: 'key-label', name: 'label', maxLength: 200, required: true, placeholder: 'e.g. laptop script' });
    this.drawAccount(me);
    if (!this.dialog.open) this.dialog.showModal();
    await this.loadKeys();
  }

  async loadKeys() {
    try {
      this.keys = (await get('/api/auth/keys')).keys || [];
      this.keyError = '';
    } catch (error) {
      this.keys = [];
      this.keyError = error.message;
    }
    this.drawAccount(read('me'));
  }

  drawAccount(me) {
    if (!me || !this.dialog) return;
    const date = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : 'never');
    const { label } = this;
    const live = (this.keys || []).filter((k) => !k.revoked);
    this.dialog.replaceChildren(
      h('div', { class: 'viewer-head' }, h('h2', { id: 'account-title' }, 'Account'),
        h('button', { type: 'button', class: 'ghost', onclick: () => this.dialog.close() }, 'Close')),
      h('dl', { class: 'facts' },
        h('dt', {}, 'User'), h('dd', {}, me.username),
        h('dt', {}, 'Role'), h('dd', {}, me.role),
        h('dt', {}, 'Signed in with'), h('dd', {}, me.auth || '—')),
      // on a narrow phone the header has no room for it: log out is here
      me.login ? h('p', { class: 'account-logout' },
        h('button', { type: 'button', class: 'ghost', onclick: () => this.logout() }, 'Log out')) : null,
      h('section', { class: 'keys', 'aria-labelledby': 'keys-title' },
        h('h3', { id: 'keys-title' }, 'API keys'),
        h('p', { class: 'muted' }, 'A key lets a script call the API as you: send it as ',
          h('code', {}, 'Authorization: Bearer …'), '.'),
        this.secret ? h('div', { class: 'secret', role: 'status' },
          h('p', {}, h('strong', {}, 'Your new key, shown once: '), 'store it now.'),
          h('div', { class: 'secret-row' },
            h('input', { id: 'key-secret', readOnly: true, value: this.secret, 'aria-label': 'New API key',
              onfocus: (event) => event.target.select() }),
            h('button', { type: 'button', onclick: (event) => this.copy(event.currentTarget) }, 'Copy'))) : null,
        this.keyError ? h('p', { class: 'notice', role: 'alert' }, this.keyError) : null,
        this.keys === null ? h('p', { class: 'muted' }, 'Loading…')
          : live.length ? h('ul', { class: 'key-list', 'aria-label': 'Your API keys' }, live.map((k) => h('li', { 'data-key-id': k.id },
            h('div', {}, h('span', { class: 'key-label' }, k.label),
              h('span', { class: 'key-meta' }, `created ${date(k.created_at)} · last used ${date(k.last_used)}`)),
            h('button', { type: 'button', class: 'ghost danger', 'aria-label': `Revoke key: ${k.label}`,
              onclick: () => this.revoke(k) }, 'Revoke'))))
            : h('p', { class: 'muted' }, 'No API keys.'),
        h('form', { class: 'key-new', onsubmit: (event) => { event.preventDefault(); this.createKey(label.value.trim()); } },
          h('div', { class: 'field' }, h('label', { for: 'key-label' }, 'New key label'), label),
          h('button', { type: 'submit', class: 'primary' }, 'Create key'))));
  }

  async createKey(label) {
    if (!label) return;
    try {
      const answer = await post('/api/auth/keys', { label });
      this.secret = answer.key;
      this.label.value = '';
    } catch (error) {
      this.keyError = error.message;
    }
    await this.loadKeys();
    this.dialog.querySelector('#key-secret')?.focus();
  }

  async revoke(key) {
    try {
      await request('DELETE', `/api/auth/keys/${encodeURIComponent(key.id)}`);
    } catch (error) {
      this.keyError = error.message;
    }
    await this.loadKeys();
  }

  async copy(button) {
    const field = this.dialog.querySelector('#key-secret');
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select();
      document.execCommand('copy');  // no clipboard API (an http origin other than localhost)
    }
    button.textContent = 'Copied';
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
    if (this.dialog?.open) this.dialog.close();
    this.onLeaving();
    try {
      await post('/api/auth/logout');
    } finally {
      write('me', null);
      this.onLogout();
    }
  }
}
