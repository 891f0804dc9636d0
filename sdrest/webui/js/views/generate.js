// The Generate view: a mode (text to image, image to image, inpaint, ControlNet, upscale, video), the prompt, the
// mode's input image (the mask editor for inpainting) and the parameters (built from /api/parameters), submitting
// a job. The form's state is kept in localStorage; a job's parameters are always read back from the server.
// A PNG dropped outside an image slot has its generation parameters read into the form (js/pnginfo.js).

import { ApiError, get, post } from '../api.js';
import { cannyDataURL } from '../canny.js';
import { h } from '../dom.js';
import {
  COMMON, COMPOSE, clearErrors, fieldRow, fieldsOf, problems, rawValues, readValues, setValues, showError,
} from '../form.js';
import { MaskEditor } from '../mask.js';
import { formValues, parseInfotext, pngTexts } from '../pnginfo.js';
import { read, subscribe, updateJob } from '../store.js';

const STORAGE_KEY = 'sdrest.form.v1';
/** Architectures that make video (the server's own test: docs/server.md, "cannot generate video"). */
const VIDEO_ARCHITECTURE = /wan|svd/i;
const GENERATORS = ['checkpoint', 'diffusion_model'];
const videoCapable = (m) => GENERATORS.includes(m.type) && VIDEO_ARCHITECTURE.test(m.architecture || '');

/** The modes: the job kind, its route under /api/generate, its tab's label, the field of its input image (and
 * whether that is optional), and what the models dir must hold for it to be offered. */
const MODES = [
  { kind: 'txt2img', route: 'text2img', label: 'Text to image' },
  { kind: 'img2img', route: 'img2img', label: 'Image to image', input: 'init_image' },
  { kind: 'inpainting', route: 'inpainting', label: 'Inpaint', input: 'init_image' },
  { kind: 'controlnet', route: 'controlnet', label: 'ControlNet', input: 'control_image',
    needs: (models) => models.some((m) => m.type === 'controlnet') },
  { kind: 'upscale', route: 'upscale', label: 'Upscale', input: 'image',
    needs: (models) => models.some((m) => m.type === 'esrgan') },
  { kind: 'video', route: 'video', label: 'Video', input: 'init_image', optional: true,
    needs: (models) => models.some(videoCapable) },
];
/** The `mode` of an `sdrest:reuse` event -> the job kind. */
const REUSE_MODES = { txt2img: 'txt2img', img2img: 'img2img', inpaint: 'inpainting', inpainting: 'inpainting',
  upscale: 'upscale', controlnet: 'controlnet', video: 'video' };
const IMAGE_NAMES = { init_image: 'The init image', control_image: 'The control image', image: 'The image to upscale' };
const CANNY_DEFAULTS = { low: 100, high: 200 };

function loadSaved() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) || {};
  } catch {
    return {};
  }
}

function readImage(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function imageSize(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  return { width: img.naturalWidth, height: img.naturalHeight };
}

/** Whether a key pressed in `target` is typing (text fields keep their keys: `[`, Ctrl+Z, Space). */
function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable
    || target.matches('input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=range]), textarea, select'));
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes('Files');
}

/** The Generate view, drawn into the form `form` (compose and parameters sections inside it). */
export class GenerateView {
  constructor(form, { onSheet } = {}) {
    this.form = form;
    this.compose = form.querySelector('[data-slot="compose"]');
    this.params = form.querySelector('[data-slot="params"]');
    this.notice = form.querySelector('#form-error');
    this.info = form.querySelector('#form-info');
    this.onSheet = onSheet || (() => {});
    this.saved = loadSaved();
    this.mode = MODES.some((m) => m.kind === this.saved.mode) ? this.saved.mode : 'txt2img';
    this.images = {};
    this.sizes = {};
    this.names = {};
    this.fields = [];
    this.modes = MODES.filter((m) => !m.needs);
    this.canny = { on: false, ...CANNY_DEFAULTS, ...(this.saved.canny || {}), edges: null };
    this.mask = new MaskEditor();
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
    document.addEventListener('dragover', (event) => {
      if (this.visible() && hasFiles(event)) event.preventDefault();
    });
    document.addEventListener('drop', (event) => {
      if (!this.visible() || !hasFiles(event)) return;
      event.preventDefault();
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith('image/'));
      if (file) this.dropAnywhere(file);
    });
    for (const type of ['keydown', 'keyup']) document.addEventListener(type, (event) => this.maskKey(event));
    // before the listener that applies the parameters (js/reuse.js): the mode's form is in place for them
    document.addEventListener('sdrest:reuse', (event) => this.onReuse(event.detail || {}), { capture: true });
    let modelsKey = '';
    subscribe('models', (models) => {
      const key = models.map((m) => `${m.id}:${m.type}:${m.architecture}:${Boolean(m.error)}`).join(',');
      if (this.built && key !== modelsKey) this.build();
      modelsKey = key;
    });
  }

  visible() {
    return Boolean(read('schema')) && !this.form.closest('[hidden]');
  }

  modeInfo(kind = this.mode) {
    return MODES.find((m) => m.kind === kind);
  }

  /** Build the controls for the current mode from the schema and the models list. */
  build() {
    const schema = read('schema');
    if (!schema) return;
    const models = read('models').filter((m) => !m.error);
    this.modes = MODES.filter((m) => !m.needs || m.needs(models));
    if (!this.modes.some((m) => m.kind === this.mode)) this.mode = 'txt2img';
    const mode = this.modeInfo();
    const values = { ...(this.saved.values || {}), ...(this.built ? rawValues(this.form, this.fields) : {}) };
    this.fields = fieldsOf(schema, mode.kind);
    const byName = new Map(this.fields.map((f) => [f.name, f]));
    const actions = { randomSeed: () => this.setSeed(''), reuseSeed: () => this.reuseSeed() };
    const row = (name) => fieldRow(byName.get(name), models, actions);
    const shown = this.fields.filter((f) => f.type !== 'image').map((f) => f.name);
    const prompts = COMPOSE.filter((n) => byName.has(n));
    const common = COMMON.filter((n) => byName.has(n) && !prompts.includes(n));
    const rest = shown.filter((n) => !prompts.includes(n) && !common.includes(n));
    this.compose.replaceChildren(
      this.tabs(),
      h('div', { class: `mode-panel mode-${mode.kind}${mode.input ? ' has-input' : ''}`, role: 'tabpanel',
        id: 'mode-panel', 'aria-labelledby': `tab-${mode.kind}` },
      mode.input ? this.inputPanel(mode, byName.get(mode.input)) : null,
      prompts.length ? h('div', { class: 'prompts' }, prompts.map(row)) : null),
    );
    this.params.replaceChildren(
      h('div', { class: 'sheet-head' },
        h('h2', { id: 'params-title' }, 'Parameters'),
        h('button', { type: 'button', class: 'ghost sheet-close', onclick: () => this.onSheet(false) }, 'Done')),
      h('div', { class: 'grid-2' }, common.map(row)),
      ...(rest.length ? [h('details', { class: 'more' }, h('summary', {}, `More parameters (${rest.length})`),
        h('div', { class: 'grid-2' }, rest.map(row)))] : []),
    );
    setValues(this.form, values);
    if (mode.kind === 'video') this.videoModels(models);
    this.chooseRequiredModels(mode);
    this.built = true;
  }

  /** A model the mode needs (the ControlNet, the upscaler) is chosen from the start: the first one listed. */
  chooseRequiredModels(mode) {
    for (const field of this.fields) {
      const needed = (field.required_for || []).includes(mode.kind) || field.name === 'esrgan_model';
      const select = field.type === 'model' && needed && this.form.querySelector(`#f-${CSS.escape(field.name)}`);
      if (select && !select.value && select.options.length > 1) select.value = select.options[1].value;
    }
  }

  /** In video mode the model choices are the video models (the default, the loaded model, may not be one). */
  videoModels(models) {
    const select = this.form.querySelector('#f-model');
    if (!select) return;
    const before = select.value;
    for (const option of [...select.options]) {
      const entry = models.find((m) => m.id === option.value);
      if (!entry || !videoCapable(entry)) option.remove();
    }
    if (select.value !== before && select.value) this.applyArchitecture(select.value);
  }

  tabs() {
    const select = (kind, focus) => {
      if (kind !== this.mode) this.setMode(kind);
      if (focus) this.compose.querySelector(`#tab-${kind}`)?.focus();
    };
    const list = h('div', { class: 'modes', role: 'tablist', 'aria-label': 'Mode' },
      this.modes.map((m) => h('button', {
        type: 'button', role: 'tab', id: `tab-${m.kind}`, class: 'mode', 'aria-selected': String(m.kind === this.mode),
        'aria-controls': 'mode-panel', tabIndex: m.kind === this.mode ? 0 : -1, onclick: () => select(m.kind, true),
      }, m.label)));
    list.addEventListener('keydown', (event) => {
      const index = this.modes.findIndex((m) => m.kind === this.mode);
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: this.modes.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(this.modes[(next + this.modes.length) % this.modes.length].kind, true);
    });
    return list;
  }

  setMode(kind) {
    this.mode = kind;
    this.build();
    this.save();
  }

  /** The mode's input: a slot to choose, paste or drop the image into; the mask editor or Canny edges beside. */
  inputPanel(mode, field) {
    const url = this.images[field.name];
    const slot = this.dropZone(field, mode);
    if (mode.kind === 'inpainting') {
      if (url) this.mask.setImage(url).catch((error) => this.say(`The image cannot be read: ${error.message}`, true));
      return h('div', { class: 'inputs' }, slot, url ? this.mask.root : null);
    }
    if (mode.kind === 'controlnet') return h('div', { class: 'inputs' }, slot, this.cannyControls(url));
    return h('div', { class: 'inputs' }, slot);
  }

  dropZone(field, mode) {
    const url = this.images[field.name];
    const size = this.sizes[field.name];
    const row = fieldRow({ ...field, doc: mode.optional ? `${field.doc} (optional)` : field.doc }, [], {});
    const preview = url && mode.kind !== 'inpainting'
      ? h('img', { class: 'drop-preview', src: url, alt: IMAGE_NAMES[field.name] }) : null;
    // the file input's own "No file chosen" is wrong once an image came by paste or drop: this line says what is there
    row.querySelector('input[type=file]').after(h('p', { class: 'drop-hint' }, url
      ? [h('span', { class: 'drop-name' }, this.names[field.name] || 'pasted image'), ` · ${size.width}×${size.height}`]
      : 'or paste or drop one'));
    const zone = h('div', { class: `drop${url ? ' filled' : ''}`, 'data-field': field.name }, row, preview);
    zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      event.stopPropagation();
      zone.classList.remove('over');
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith('image/'));
      const uri = event.dataTransfer.getData('text/uri-list').split('\n').find((line) => line && !line.startsWith('#'));
      if (file) this.takeFile(field.name, file);
      else if (uri) this.fetchInto(field.name, uri);  // a result dragged from this page
    });
    return zone;
  }

  cannyControls(url) {
    const c = this.canny;
    const number = (key, label) => h('div', { class: 'field' },
      h('label', { for: `canny-${key}` }, label),
      h('input', { type: 'number', id: `canny-${key}`, min: 0, max: 1000, step: 10, value: c[key], inputMode: 'numeric',
        onchange: (event) => { c[key] = Number(event.target.value) || 0; this.updateEdges(); } }));
    const edges = c.on && c.edges && url
      ? h('figure', { class: 'drop-figure' }, h('img', { class: 'drop-preview canny-preview', src: c.edges,
        alt: 'Canny edges preview' }), h('figcaption', {}, 'What the ControlNet gets'))
      : null;
    return h('div', { class: 'canny' },
      h('div', { class: 'check' },
        h('input', { type: 'checkbox', id: 'canny-on', checked: c.on,
          onchange: (event) => { c.on = event.target.checked; this.save(); this.updateEdges(); } }),
        h('label', { for: 'canny-on' }, 'Canny edges'),
        h('span', { class: 'hint' }, 'send the edges of the image, for a Canny ControlNet')),
      c.on ? h('div', { class: 'canny-thresholds' }, number('low', 'Low threshold'), number('high', 'High threshold')) : null,
      edges);
  }

  async updateEdges() {
    const url = this.images.control_image;
    const c = this.canny;
    c.edges = null;
    if (c.on && url) {
      try {
        c.edges = await cannyDataURL(url, c.low, c.high);
      } catch (error) {
        this.say(`The edges cannot be made: ${error.message}`, true);
      }
    }
    this.save();
    if (this.mode === 'controlnet') this.build();
  }

  /** Take `blob` (an image) as the input `name`; the size fields follow the image. */
  async takeFile(name, blob) {
    if (!blob) return;
    if (!blob.type.startsWith('image/')) {
      this.say(`${blob.name || 'That file'} is not an image.`, true);
      return;
    }
    try {
      const url = await readImage(blob);
      const size = await imageSize(url);
      this.images[name] = url;
      this.sizes[name] = size;
      this.names[name] = blob.name || '';
      if (name !== 'image') {
        const side = (v) => String(Math.max(64, v - (v % 8)));
        setValues(this.form, { width: side(size.width), height: side(size.height) });
        this.save();
      }
      if (name === 'control_image' && this.canny.on) await this.updateEdges();
      this.build();
    } catch (error) {
      this.say(`The image cannot be read: ${error.message}`, true);
    }
  }

  paste(event) {
    const mode = this.modeInfo();
    if (!mode.input || !this.visible()) return;
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith('image/'));
    if (item) {
      event.preventDefault();
      this.takeFile(mode.input, item.getAsFile());
    }
  }

  /** A file dropped outside an image slot: a PNG's generation parameters go into the form; an image without
   * them becomes the mode's input image. */
  async dropAnywhere(file) {
    const texts = file.type === 'image/png' ? await pngTexts(await file.arrayBuffer()) : new Map();
    const text = texts.get('parameters');
    if (text) {
      this.applyInfotext(text, file.name);
      return;
    }
    const mode = this.modeInfo();
    if (mode.input) this.takeFile(mode.input, file);
    else this.say(`${file.name} carries no generation parameters.`, true);
  }

  /** Put the parameters of A1111's "parameters" text into the form (and into the saved values of other modes). */
  applyInfotext(text, source = 'the image') {
    const schema = read('schema');
    const { values, missing } = formValues(parseInfotext(text), {
      samplers: schema.sampling_method?.enum || [], schedulers: schema.scheduler?.enum || [], models: read('models'),
    });
    if (values.model && values.model !== this.form.querySelector('#f-model')?.value) {
      setValues(this.form, { model: values.model });
      this.applyArchitecture(values.model);
    }
    this.saved.values = { ...(this.saved.values || {}), ...values };
    setValues(this.form, values);
    this.save();
    this.say(`Read the parameters of ${source}.${missing.length ? ` Not on this server: ${missing.join(', ')}.` : ''}`);
  }

  /** `sdrest:reuse` (js/reuse.js applies its parameters): switch to its mode, and take its image as the input. */
  async onReuse({ mode, image }) {
    const kind = REUSE_MODES[mode];
    if (kind && kind !== this.mode && this.modes.some((m) => m.kind === kind)) this.setMode(kind);
    const input = this.modeInfo().input;
    if (image && input) await this.fetchInto(input, image);
  }

  /** Take the image at `url` (this server's: an output, a thumbnail) as the input `name`. */
  async fetchInto(name, url) {
    try {
      if (new URL(url, location.href).origin !== location.origin) throw new Error('not an image of this server');
      const response = await fetch(url, { credentials: 'same-origin' });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      await this.takeFile(name, await response.blob());
    } catch (error) {
      this.say(`The image cannot be fetched: ${error.message}`, true);
    }
  }

  maskKey(event) {
    if (this.mode !== 'inpainting' || !this.images.init_image || !this.visible()) return;
    if (typing(event.target) || document.querySelector('dialog[open]')) return;
    this.mask.key(event);
  }

  /** A line under the prompt: what just happened (`error`: what went wrong). */
  say(message, error = false) {
    const line = error ? this.notice : this.info;
    (error ? this.info : this.notice).hidden = true;
    line.textContent = message;
    line.hidden = false;
  }

  save() {
    const values = { ...(this.saved.values || {}), ...rawValues(this.form, this.fields) };
    this.saved = { mode: this.mode, values, canny: { on: this.canny.on, low: this.canny.low, high: this.canny.high } };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.saved));
  }

  /** Apply the per-architecture defaults of the model `id` (width, height, steps, cfg, sampler...): its
   * architecture's entry, else the longest family name it starts with ("SDXL" for "SDXL Refiner"). */
  applyArchitecture(id) {
    const model = read('models').find((m) => m.id === id);
    const table = read('schema').per_architecture || {};
    const architecture = model?.architecture || '';
    const family = table[architecture] ? architecture
      : Object.keys(table).filter((k) => architecture.startsWith(k)).sort((a, b) => b.length - a.length)[0];
    if (family) setValues(this.form, table[family]);
  }

  setSeed(value) {
    setValues(this.form, { seed: value });
    this.save();
  }

  reuseSeed() {
    const newest = [...read('jobs').values()].reverse().find((j) => j.status === 'succeeded' && j.parameters);
    if (newest) this.setSeed(newest.parameters.seed);
  }

  /** The images the current mode sends: its input, the painted mask, the Canny edges instead of the picture. */
  async requestImages(mode) {
    const images = {};
    if (mode.input && this.images[mode.input]) images[mode.input] = this.images[mode.input];
    if (mode.kind === 'inpainting' && images.init_image && this.mask.url === images.init_image && !this.mask.isEmpty()) {
      images.mask_image = this.mask.toDataURL();
    }
    if (mode.kind === 'controlnet' && images.control_image && this.canny.on) {
      if (!this.canny.edges) this.canny.edges = await cannyDataURL(images.control_image, this.canny.low, this.canny.high);
      images.control_image = this.canny.edges;
    }
    return images;
  }

  /** Submit the form: a new job; errors are shown next to the field they concern. */
  async submit() {
    clearErrors(this.form);
    this.notice.hidden = true;
    this.info.hidden = true;
    const mode = this.modeInfo();
    const body = readValues(this.form, this.fields, await this.requestImages(mode));
    const found = problems(body, this.fields, mode.kind).filter(([name]) => name !== mode.input && name !== 'mask_image');
    if (mode.input && !mode.optional && !body[mode.input]) found.unshift([mode.input, 'required: choose, paste or drop an image']);
    else if (mode.kind === 'inpainting' && !body.mask_image) found.unshift(['mask_image', 'paint where to redraw']);
    if (found.length) {
      for (const [name, message] of found) showError(this.form, name, message);
      this.reveal(found[0][0]);
      return;
    }
    const button = this.form.querySelector('#generate');
    button.setAttribute('aria-busy', 'true');
    try {
      const answer = await post(`/api/generate/${mode.route}`, body);
      const shown = Object.fromEntries(Object.entries(body).filter(([name]) => !/image$/.test(name)));
      updateJob(answer.job_id, { status: answer.status, kind: answer.kind, queue_position: answer.queue_position,
        owner: read('me')?.username, created_at: Date.now() / 1000, parameters: shown, outputs: [] });
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
    const el = this.form.querySelector(`#f-${CSS.escape(name)}`);
    el?.focus();
    el?.scrollIntoView?.({ block: 'nearest' });
  }

  /** The form's field an error from the server names (an alias, `source_image`, `loras[2]`...). */
  fieldNamed(field) {
    const name = { source_image: 'init_image' }[field] || field.replace(/\[\d+\]$/, '');
    return this.fields.find((f) => f.name === name || (f.aliases || []).includes(name))?.name;
  }

  showError(error) {
    const field = error instanceof ApiError && error.field;
    const name = field && this.fieldNamed(field);
    if (name && showError(this.form, name, error.message)) {
      this.reveal(name);
      return;
    }
    this.notice.textContent = field ? `${field}: ${error.message}` : error.message;
    this.notice.hidden = false;
  }
}
