// The Models view: the registry as a table, a page at a time from the server (search, kind and architecture
// filters), with what a model still lacks. Admins also get Load/Unload, Hash and Convert (absent for everyone
// else); hashing and converting are queued jobs, followed through the event stream like any other.

import { ApiError, get, post } from '../api.js';
import { bytes, h } from '../dom.js';
import { read, subscribe, updateJob, write } from '../store.js';

const PAGE_SIZE = 50;
const ACTIVE = new Set(['queued', 'running']);
const COLUMNS = [['Name'], ['Kind'], ['Architecture'], ['Quantization', 'col-quant'], ['Size', 'num'],
  ['Needs', 'col-needs'], ['State']];

/** Fetch the whole registry into the store (the form's model choices and the status bar read it), a page of
 * 1000 at a time: a models dir of thousands of LoRAs must not crowd the checkpoints out. */
export async function loadModels() {
  const first = await get('/api/models?limit=1000&sort_by=type');
  const rest = await Promise.all(Array.from({ length: Math.min(first.pages || 1, 50) - 1 },
    (_, i) => get(`/api/models?limit=1000&sort_by=type&page=${i + 2}`)));
  write('models', [first, ...rest].flatMap((answer) => answer.models || []));
}

function modelPath(id) {
  return id.split('/').map(encodeURIComponent).join('/');
}

export class ModelsView {
  constructor(root, { onChanged }) {
    this.root = root;
    this.table = root.querySelector('table');
    this.body = root.querySelector('tbody');
    this.notice = root.querySelector('.notice');
    this.onChanged = onChanged;
    this.busy = new Set();
    this.query = { search: '', type: '', architecture: '', page: 1 };
    this.page = { models: [], total: 0, pages: 1 };
    this.facets = null;
    this.tasks = new Map(); // job id -> { kind, model, label } of the hashes and conversions started here
    this.seq = 0;
    this.timer = null;
    this.buildToolbar();
    subscribe('jobs', () => this.renderTasks());
  }

  buildToolbar() {
    this.search = h('input', { type: 'search', id: 'models-search', placeholder: 'Name, kind, architecture…',
      autocomplete: 'off', oninput: () => this.setQuery({ search: this.search.value.trim() }, 250) });
    this.kind = h('select', { id: 'models-kind', onchange: () => this.setQuery({ type: this.kind.value }) },
      h('option', { value: '' }, 'All kinds'));
    this.arch = h('select', { id: 'models-arch', onchange: () => this.setQuery({ architecture: this.arch.value }) },
      h('option', { value: '' }, 'All architectures'));
    this.count = h('p', { class: 'pager-count', role: 'status' });
    this.prev = h('button', { type: 'button', class: 'ghost', onclick: () => this.setQuery({ page: this.query.page - 1 }) },
      'Previous');
    this.next = h('button', { type: 'button', class: 'ghost', onclick: () => this.setQuery({ page: this.query.page + 1 }) },
      'Next');
    this.taskList = h('ul', { class: 'tasks', 'aria-label': 'Model tasks' });
    const toolbar = h('div', { class: 'models-toolbar', role: 'search', 'aria-label': 'Filter models' },
      h('div', { class: 'field grow' }, h('label', { for: 'models-search' }, 'Search models'), this.search),
      h('div', { class: 'field' }, h('label', { for: 'models-kind' }, 'Kind'), this.kind),
      h('div', { class: 'field' }, h('label', { for: 'models-arch' }, 'Architecture'), this.arch));
    const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' }, this.count, this.prev, this.next);
    this.root.querySelector('.table-wrap').before(toolbar, this.taskList);
    this.root.querySelector('.table-wrap').after(pager);
    this.convertDialog = h('dialog', { class: 'viewer convert-dialog', 'aria-labelledby': 'convert-title' });
    document.body.append(this.convertDialog);
  }

  /** Change the query (back to page 1 unless the page is what changes) and fetch, after `delay` ms. */
  setQuery(change, delay = 0) {
    this.query = { ...this.query, page: 1, ...change };
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  /** Fetch the current page (an older answer arriving late is dropped). */
  async refresh() {
    const seq = ++this.seq;
    const q = this.query;
    const params = new URLSearchParams({ page: q.page, limit: PAGE_SIZE, sort_by: 'type' });
    if (q.search) params.set('search', q.search.slice(0, 200));
    if (q.type) params.set('type', q.type);
    if (q.architecture) params.set('architecture', q.architecture);
    try {
      this.facets ||= this.loadFacets();
      const [answer] = await Promise.all([get(`/api/models?${params}`), this.facets]);
      if (seq !== this.seq) return;
      this.page = answer;
      this.draw();
    } catch (error) {
      this.facets = null;  // asked again next time
      if (seq === this.seq) this.show(error);
    }
  }

  /** The kinds and architectures the models dir holds, with their counts (the filters' choices). */
  async loadFacets() {
    const stats = await get('/api/models/stats');
    const option = ([value, count]) => h('option', { value }, `${value} (${count})`);
    const fill = (select, all, pairs) => {
      const chosen = select.value;
      select.replaceChildren(h('option', { value: '' }, all), ...pairs.sort().map(option));
      select.value = pairs.some(([value]) => value === chosen) ? chosen : '';
    };
    fill(this.kind, 'All kinds', Object.entries(stats.by_type || {}).map(([k, v]) => [k, v.count]));
    fill(this.arch, 'All architectures', Object.entries(stats.by_architecture || {}));
    return stats;
  }

  /** Redraw (the store's models changed: loaded, unloaded): the page is fetched again. */
  render() {
    if (!read('me')) return;
    this.setQuery({ page: this.query.page }, 50);
  }

  draw() {
    const admin = read('me')?.role === 'admin';
    const { models = [], total = 0, pages = 1 } = this.page;
    const page = Math.min(this.query.page, pages);
    this.table.querySelector('thead').replaceChildren(h('tr', {},
      COLUMNS.map(([name, cls]) => h('th', { scope: 'col', class: cls }, name)),
      admin ? h('th', { scope: 'col', class: 'actions' }, 'Actions') : null));
    this.body.replaceChildren(...models.map((m) => this.row(m, admin)));
    if (!models.length) {
      this.body.append(h('tr', {}, h('td', { colSpan: COLUMNS.length + (admin ? 1 : 0), class: 'empty' },
        'No model matches.')));
    }
    this.count.textContent = `${total} model${total === 1 ? '' : 's'} · page ${page} of ${pages}`;
    this.prev.disabled = page <= 1;
    this.next.disabled = page >= pages;
  }

  row(m, admin) {
    const hash = m.hashes?.autov2;
    return h('tr', { 'data-model-id': m.id },
      h('th', { scope: 'row' }, h('span', { class: 'model-name' }, m.name),
        h('span', { class: 'model-path' }, m.path), hash ? h('span', { class: 'model-path' }, `hash ${hash}`) : null),
      h('td', {}, m.type),
      h('td', {}, m.architecture || '—'),
      h('td', { class: 'col-quant' }, m.quantization || '—'),
      h('td', { class: 'num' }, bytes(m.size)),
      h('td', { class: 'col-needs' }, m.missing?.length
        ? h('span', { class: 'needs', title: 'companion files this model needs and the models dir lacks' },
          m.missing.join(', ')) : h('span', { class: 'muted' }, '—')),
      h('td', {}, m.loaded ? h('span', { class: 'badge on' }, 'Loaded')
        : m.load_as ? h('span', { class: 'badge' }, 'Not loaded') : h('span', { class: 'muted', title: 'loaded with a model' }, '—')),
      admin ? h('td', { class: 'actions' }, h('div', { class: 'row-actions' },
        m.load_as ? this.loadButton(m) : null,
        h('button', { type: 'button', class: 'ghost', 'aria-label': `Hash ${m.name}`, disabled: Boolean(hash),
          title: hash ? `sha256 ${m.hashes.sha256}` : 'Compute the sha256 (a queued job)',
          onclick: () => this.hash(m) }, hash ? 'Hashed' : 'Hash'),
        m.format !== 'diffusers' ? h('button', { type: 'button', class: 'ghost', 'aria-label': `Convert ${m.name}`,
          onclick: () => this.askConvert(m) }, 'Convert') : null)) : null);
  }

  loadButton(model) {
    const busy = this.busy.has(model.id);
    const label = model.loaded ? 'Unload' : 'Load';
    return h('button', { type: 'button', class: model.loaded ? 'ghost' : '', disabled: busy, 'aria-busy': busy || undefined,
      'aria-label': `${label} ${model.name}`, onclick: () => this.act(model, model.loaded ? 'unload' : 'load') },
    busy ? (model.loaded ? 'Unloading…' : 'Loading…') : label);
  }

  show(error, name = '') {
    this.notice.textContent = `${name ? `${name}: ` : ''}${error instanceof ApiError ? error.message : String(error)}`;
    this.notice.hidden = false;
  }

  async act(model, action) {
    this.busy.add(model.id);
    this.notice.hidden = true;
    this.draw();
    try {
      await post(`/api/models/${modelPath(model.id)}/${action}`);
    } catch (error) {
      this.show(error, model.name);
    } finally {
      this.busy.delete(model.id);
      await loadModels().catch(() => {});
      this.onChanged();
    }
  }

  /** Start a job (hash or convert) and follow it: the event stream feeds the store, the task list draws it. */
  async startTask(path, body, kind, model, label) {
    this.notice.hidden = true;
    try {
      const answer = await post(path, body);
      this.tasks.set(answer.job_id, { kind, model, label });
      updateJob(answer.job_id, { status: answer.status, kind, owner: read('me')?.username, created_at: Date.now() / 1000,
        parameters: { prompt: label }, outputs: [] });
    } catch (error) {
      this.show(error, model.name);
    }
  }

  hash(model) {
    this.startTask('/api/models/hash', { models: [model.id] }, 'hash', model, `Hash ${model.name}`);
  }

  /** The quantization types the server's convert takes (from its own OpenAPI document). */
  async quantizationTypes() {
    if (!this.qtypes) {
      const doc = await get('/api/openapi.json');
      const schema = doc.paths['/api/models/convert'].post.requestBody.content['application/json'].schema;
      this.qtypes = schema.properties.quantization_type.enum || [];
    }
    return this.qtypes;
  }

  async askConvert(model) {
    let types;
    try {
      types = await this.quantizationTypes();
    } catch (error) {
      this.show(error);
      return;
    }
    const select = h('select', { id: 'convert-type' },
      types.map((t) => h('option', { value: t, selected: t === 'q8_0' }, t)));
    const close = () => this.convertDialog.close();
    const form = h('form', { method: 'dialog', onsubmit: (event) => {
      event.preventDefault();
      close();
      this.startTask('/api/models/convert', { model_name: model.id, quantization_type: select.value }, 'convert', model,
        `Convert ${model.name} to ${select.value}`);
    } },
    h('div', { class: 'viewer-head' }, h('h2', { id: 'convert-title' }, `Convert ${model.name}`),
      h('button', { type: 'button', class: 'ghost', onclick: close }, 'Close')),
    h('p', { class: 'muted' }, 'Writes a GGUF file beside the model (a queued job).'),
    h('div', { class: 'field' }, h('label', { for: 'convert-type' }, 'Quantization type'), select),
    h('div', { class: 'viewer-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start conversion')));
    this.convertDialog.replaceChildren(form);
    this.convertDialog.showModal();
    select.focus();
  }

  /** A finished task's effect shows: the converted file after a rescan, the hash in its row. */
  async afterTask(task) {
    if (task.kind === 'convert') await post('/api/models/refresh').catch((error) => this.show(error));
    this.facets = null;
    this.render();
    loadModels().catch(() => {});
  }

  /** The hashes and conversions started here, with their progress; a finished one refreshes the table once. */
  renderTasks() {
    const jobs = read('jobs');
    const items = [];
    for (const [id, task] of this.tasks) {
      const job = jobs.get(id);
      if (!job) continue;
      const percent = Math.round(100 * (job.status === 'succeeded' ? 1 : job.progress || 0));
      let line = `${percent} %`;
      if (job.status === 'queued') line = 'Queued';
      else if (job.status === 'failed') line = `Failed: ${job.error || ''}`;
      else if (job.status === 'cancelled') line = 'Cancelled';
      else if (job.status === 'succeeded') {
        line = task.kind === 'convert' ? `Done: ${job.result?.output_path || ''}` : 'Done';
        if (!task.done) {
          task.done = true;
          this.afterTask(task);
        }
      }
      const fill = h('span', { class: 'bar-fill' });
      fill.style.width = `${percent}%`;
      items.push(h('li', { class: `task job-${job.status}`, 'data-job-id': id },
        h('p', { class: 'task-label' }, task.label),
        h('div', { class: 'bar', role: 'progressbar', 'aria-label': `Progress: ${task.label}`, 'aria-valuemin': 0,
          'aria-valuemax': 100, 'aria-valuenow': percent }, fill),
        h('p', { class: 'job-progress' }, line),
        ACTIVE.has(job.status) ? null : h('button', { type: 'button', class: 'ghost', 'aria-label': `Dismiss: ${task.label}`,
          onclick: () => { this.tasks.delete(id); this.renderTasks(); } }, 'Dismiss')));
    }
    this.taskList.replaceChildren(...items);
    this.taskList.hidden = !items.length;
  }
}
