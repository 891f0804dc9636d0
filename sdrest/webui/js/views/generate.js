// The Generate view: the prompt and the parameters (built from /api/parameters), submitting a job.
// The form's state is kept in localStorage; a job's parameters are always read back from the server.

import { ApiError, get, post } from '../api.js';
import { h } from '../dom.js';
import {
  COMMON, COMPOSE, clearErrors, fieldRow, fieldsOf, problems, rawValues, readValues, setValues, showError,
} from '../form.js';
import { read, updateJob } from '../store.js';

const STORAGE_KEY = 'sdrest.form.v1';
const MODES = [['txt2img', 'text2img', 'Text to image'], ['img2img', 'img2img', 'Image to image']];

function loadSaved() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) || {};
  } catch {
    return {};
  }
}

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** The Generate view, drawn into the form `form` (compose and parameters sections inside it). */
export class GenerateView {
  constructor(form, { onSheet } = {}) {
    this.form = form;
    this.compose = form.querySelector('[data-slot="compose"]');
    this.params = form.querySelector('[data-slot="params"]');
    this.notice = form.querySelector('#form-error');
    this.onSheet = onSheet || (() => {});
    this.saved = loadSaved();
    this.mode = this.saved.mode === 'img2img' ? 'img2img' : 'txt2img';
    this.images = {};
    this.fields = [];
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    form.addEventListener('input', () => this.save());
    form.addEventListener('change', (event) => {
      if (event.target.name === 'model') this.applyArchitecture(event.target.value);
      if (event.target.type === 'file') this.takeFile(event.target.name, event.target.files[0]);
      this.save();
    });
    document.addEventListener('paste', (event) => this.paste(event));
  }

  /** Build the controls for the current mode from the schema and the models list. */
  build() {
    const schema = read('schema');
    const values = { ...(this.saved.values || {}), ...(this.built ? rawValues(this.form, this.fields) : {}) };
    this.fields = fieldsOf(schema, this.mode);
    const byName = new Map(this.fields.map((f) => [f.name, f]));
    const actions = { randomSeed: () => this.setSeed(''), reuseSeed: () => this.reuseSeed() };
    const models = read('models');
    const row = (name) => fieldRow(byName.get(name), models, actions);
    const imageFields = this.fields.filter((f) => f.type === 'image' && (f.required_for || []).includes(this.mode));
    const common = COMMON.filter((n) => byName.has(n));
    const rest = this.fields.map((f) => f.name)
      .filter((n) => !COMPOSE.includes(n) && !common.includes(n) && byName.get(n).type !== 'image');
    this.compose.replaceChildren(
      this.modeSwitch(),
      ...COMPOSE.filter((n) => byName.has(n)).map(row),
      ...imageFields.map((f) => this.dropZone(f)),
    );
    this.params.replaceChildren(
      h('div', { class: 'sheet-head' },
        h('h2', { id: 'params-title' }, 'Parameters'),
        h('button', { type: 'button', class: 'ghost sheet-close', onclick: () => this.onSheet(false) }, 'Done')),
      h('div', { class: 'grid-2' }, common.map(row)),
      rest.length ? h('details', { class: 'more' }, h('summary', {}, `More parameters (${rest.length})`),
        h('div', { class: 'grid-2' }, rest.map(row))) : null,
    );
    setValues(this.form, values);
    this.built = true;
  }

  modeSwitch() {
    return h('fieldset', { class: 'modes' }, h('legend', { class: 'visually-hidden' }, 'Mode'),
      MODES.map(([kind, , label]) => h('label', { class: 'mode' },
        h('input', {
          type: 'radio', name: 'mode', value: kind, checked: this.mode === kind,
          onchange: () => { this.mode = kind; this.save(); this.build(); },
        }), h('span', {}, label))));
  }

  dropZone(field) {
    const zone = h('div', { class: 'drop', 'data-field': field.name },
      fieldRow(field, [], {}),
      this.images[field.name] ? h('img', { class: 'drop-preview', src: this.images[field.name], alt: 'The init image' })
        : h('p', { class: 'drop-hint' }, 'Choose, paste or drop an image'));
    zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('over');
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith('image/'));
      if (file) this.takeFile(field.name, file);
    });
    return zone;
  }

  async takeFile(name, file) {
    if (!file) return;
    this.images[name] = await readImage(file);
    this.build();
  }

  paste(event) {
    if (this.mode !== 'img2img') return;
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith('image/'));
    if (item) {
      event.preventDefault();
      this.takeFile('init_image', item.getAsFile());
    }
  }

  save() {
    this.saved = { mode: this.mode, values: rawValues(this.form, this.fields) };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.saved));
  }

  /** Apply the per-architecture defaults of the model `id` (width, height, steps, cfg, sampler...). */
  applyArchitecture(id) {
    const model = read('models').find((m) => m.id === id);
    const defaults = model && read('schema').per_architecture?.[model.architecture];
    if (defaults) setValues(this.form, defaults);
  }

  setSeed(value) {
    setValues(this.form, { seed: value });
    this.save();
  }

  reuseSeed() {
    const newest = [...read('jobs').values()].reverse().find((j) => j.status === 'succeeded' && j.parameters);
    if (newest) this.setSeed(newest.parameters.seed);
  }

  /** Put a job's prompt (and, with `withSeed`, its seed) back into the form. */
  reuse(job, { withSeed = false, seed = undefined } = {}) {
    const p = job.parameters || {};
    const values = { prompt: p.prompt ?? '', negative_prompt: p.negative_prompt ?? '' };
    if (withSeed) Object.assign(values, { seed: seed ?? p.seed, width: p.width, height: p.height, steps: p.steps,
      cfg_scale: p.cfg_scale });
    setValues(this.form, values);
    this.save();
    this.form.querySelector('#f-prompt')?.focus();
  }

  /** Submit the form: a new job; errors are shown next to the field they concern. */
  async submit() {
    clearErrors(this.form);
    this.notice.hidden = true;
    const body = readValues(this.form, this.fields, this.images);
    const route = MODES.find(([kind]) => kind === this.mode)[1];
    const found = problems(body, this.fields, this.mode);
    if (found.length) {
      for (const [name, message] of found) showError(this.form, name, message);
      this.reveal(found[0][0]);
      return;
    }
    const button = this.form.querySelector('#generate');
    button.setAttribute('aria-busy', 'true');
    try {
      const answer = await post(`/api/generate/${route}`, body);
      updateJob(answer.job_id, { status: answer.status, kind: answer.kind, queue_position: answer.queue_position,
        owner: read('me')?.username, created_at: Date.now() / 1000, parameters: body, outputs: [] });
      const job = await get(`/api/queue/job/${encodeURIComponent(answer.job_id)}`);
      updateJob(job.id, job);
    } catch (error) {
      this.showError(error);
    } finally {
      button.removeAttribute('aria-busy');
    }
  }

  /** Bring field `name` into view (opening the phone's sheet when it lives there) and focus it. */
  reveal(name) {
    if (!this.compose.querySelector(`#f-${CSS.escape(name)}`) && matchMedia('(max-width: 760px)').matches) {
      this.onSheet(true);
    }
    this.form.querySelector(`#f-${CSS.escape(name)}`)?.focus();
  }

  showError(error) {
    const field = error instanceof ApiError && error.field;
    const name = field && (this.fields.find((f) => f.name === field || (f.aliases || []).includes(field))?.name);
    if (name && showError(this.form, name, error.message)) {
      this.reveal(name);
      return;
    }
    this.notice.textContent = field ? `${field}: ${error.message}` : error.message;
    this.notice.hidden = false;
  }
}
