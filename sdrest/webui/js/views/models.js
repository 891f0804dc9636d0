// The Models view: the registry as a table; admins also get Load and Unload (absent for everyone else).

import { ApiError, get, post } from '../api.js';
import { bytes, h } from '../dom.js';
import { read, write } from '../store.js';

/** Fetch the registry into the store. */
export async function loadModels() {
  const answer = await get('/api/models?limit=1000');
  write('models', answer.models || []);
}

export class ModelsView {
  constructor(root, { onChanged }) {
    this.root = root;
    this.body = root.querySelector('tbody');
    this.notice = root.querySelector('.notice');
    this.onChanged = onChanged;
    this.busy = new Set();
  }

  render() {
    const admin = read('me')?.role === 'admin';
    this.root.querySelector('th.actions').hidden = !admin;
    const models = [...read('models')].sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
    this.body.replaceChildren(...models.map((m) => h('tr', {},
      h('th', { scope: 'row' }, h('span', { class: 'model-name' }, m.name), h('span', { class: 'model-path' }, m.path)),
      h('td', {}, m.type),
      h('td', {}, m.architecture || '—'),
      h('td', { class: 'col-quant' }, m.quantization || '—'),
      h('td', { class: 'num' }, bytes(m.size)),
      h('td', {}, m.loaded ? h('span', { class: 'badge on' }, 'Loaded')
        : m.load_as ? h('span', { class: 'badge' }, 'Not loaded') : h('span', { class: 'muted', title: 'loaded with a model' }, '—')),
      admin ? h('td', { class: 'actions' }, m.load_as ? this.button(m) : null) : null)));
  }

  button(model) {
    const busy = this.busy.has(model.id);
    const action = model.loaded ? 'unload' : 'load';
    const label = model.loaded ? 'Unload' : 'Load';
    return h('button', { type: 'button', class: model.loaded ? 'ghost' : '', disabled: busy, 'aria-busy': busy || undefined,
      'aria-label': `${label} ${model.name}`, onclick: () => this.act(model, action) },
    busy ? (model.loaded ? 'Unloading…' : 'Loading…') : label);
  }

  async act(model, action) {
    this.busy.add(model.id);
    this.notice.hidden = true;
    this.render();
    try {
      await post(`/api/models/${model.id.split('/').map(encodeURIComponent).join('/')}/${action}`);
    } catch (error) {
      this.notice.textContent = error instanceof ApiError ? `${model.name}: ${error.message}` : String(error);
      this.notice.hidden = false;
    } finally {
      this.busy.delete(model.id);
      await loadModels().catch(() => {});
      this.onChanged();
    }
  }
}
