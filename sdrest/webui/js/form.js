// The generation form, built from /api/parameters: one control per field, with its range, default and doc.
// A parameter the server adds appears here without UI work; labels below only make known names read well.

import { h } from './dom.js';

const LABELS = {
  prompt: 'Prompt', negative_prompt: 'Negative prompt', cfg_scale: 'CFG scale', sampling_method: 'Sampler',
  batch_count: 'Batch count', clip_skip: 'CLIP skip', vae_model: 'VAE', taesd_model: 'TAESD',
  clip_l_model: 'CLIP-L', clip_g_model: 'CLIP-G', t5xxl_model: 'T5-XXL', llm_model: 'LLM text encoder',
  vae_tiling: 'VAE tiling', preview: 'Step previews', loras: 'LoRAs', init_image: 'Init image',
  source_image: 'Image', mask_image: 'Mask', control_image: 'Control image', control_net_model: 'ControlNet model',
  esrgan_model: 'Upscaler', image: 'Image',
};
/** The fields shown first, in this order; every other field of the kind goes under "More parameters". */
export const COMMON = ['model', 'control_net_model', 'esrgan_model', 'upscale_factor', 'width', 'height', 'steps',
  'cfg_scale', 'seed', 'sampling_method', 'scheduler', 'batch_count', 'strength', 'control_strength', 'video_frames',
  'loras'];
/** The fields that live beside the Generate button rather than among the parameters. */
export const COMPOSE = ['prompt', 'negative_prompt'];

/** The label of field `name`: a known one, else the name in words ("flow_shift" -> "Flow shift"). */
export function labelOf(name) {
  if (LABELS[name]) return LABELS[name];
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The fields of `schema` (the `parameters` object of /api/parameters) that a `kind` job takes. */
export function fieldsOf(schema, kind) {
  return Object.entries(schema)
    .filter(([, spec]) => spec && typeof spec === 'object' && Array.isArray(spec.kinds) && spec.kinds.includes(kind))
    .map(([name, spec]) => ({ name, ...spec }));
}

function numberInput(field) {
  const step = field.multiple_of || (field.type === 'integer' ? 1 : 'any');
  return h('input', {
    type: 'number', id: `f-${field.name}`, name: field.name, step, inputMode: field.type === 'integer' ? 'numeric' : 'decimal',
    min: field.minimum ?? undefined, max: field.maximum ?? undefined,
    placeholder: field.default === undefined ? 'model default' : undefined,
    value: field.default ?? '',
  });
}

/** The LoRAs a `loras` control's value names: a JSON list of names or {name, multiplier}, or "name:0.8, other". */
export function parseLoras(value) {
  if (Array.isArray(value)) return value;
  const text = String(value ?? '').trim();
  if (!text) return [];
  if (text.startsWith('[')) {
    try {
      const items = JSON.parse(text);
      return Array.isArray(items) ? items.filter((i) => typeof i === 'string' || (i && typeof i.name === 'string')) : [];
    } catch {
      return [];
    }
  }
  return text.split(',').map((item) => item.trim()).filter(Boolean).map((item) => {
    const [name, weight] = item.split(':');
    return weight === undefined ? name : { name, multiplier: Number(weight) };
  });
}

/** The LoRA picker: a select of the registry's LoRAs that adds one, and each chosen one with its weight. Its
 * value lives in a hidden input (`#f-loras`, JSON), so saving, restoring and reuse treat it as any other field. */
function loraPicker(field, models) {
  const loras = models.filter((m) => m.type === 'lora' && !m.error);
  const value = h('input', { type: 'hidden', id: `f-${field.name}`, name: field.name, value: '[]' });
  const list = h('ul', { class: 'lora-list', 'aria-label': 'Chosen LoRAs' });
  const entryOf = (name) => loras.find((m) => m.id === name || m.name === name);
  const items = () => parseLoras(value.value).map((i) => (typeof i === 'string' ? { name: i, multiplier: 1 } : i));
  const write = (next) => {
    value.value = JSON.stringify(next);
    render();
    value.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const add = h('select', { id: `f-${field.name}-add`, 'data-target': '' },
    h('option', { value: '' }, loras.length ? 'Add a LoRA…' : 'No LoRAs in the models dir'),
    loras.map((m) => h('option', { value: m.id }, m.architecture ? `${m.name} · ${m.architecture}` : m.name)));
  add.disabled = !loras.length;
  add.addEventListener('change', (event) => {
    event.stopPropagation();
    if (!add.value) return;
    const chosen = items().filter((i) => i.name !== add.value);
    write([...chosen, { name: add.value, multiplier: 1 }]);
    add.value = '';
  });
  function render() {
    list.replaceChildren(...items().map((item, index) => {
      const name = entryOf(item.name)?.name || item.name;
      const weight = h('input', {
        type: 'number', class: 'lora-weight', step: 0.05, min: -10, max: 10, value: item.multiplier ?? 1,
        inputMode: 'decimal', 'aria-label': `Weight of ${name}`,
      });
      weight.addEventListener('change', (event) => {
        event.stopPropagation();
        const next = items();
        next[index] = { ...next[index], multiplier: Number(weight.value) };
        write(next);
      });
      weight.addEventListener('input', (event) => event.stopPropagation());
      return h('li', { class: 'lora' }, h('span', { class: 'lora-name', title: item.name }, name), weight,
        h('button', { type: 'button', class: 'ghost', 'aria-label': `Remove ${name}`,
          onclick: () => write(items().filter((_, i) => i !== index)) }, '×'));
    }));
  }
  value.refresh = render;
  return h('div', { class: 'loras' }, add, value, list);
}

function modelSelect(field, models) {
  const kinds = field.model_kinds || [];
  const choices = models.filter((m) => kinds.includes(m.type) && !m.error);
  return h('select', { id: `f-${field.name}`, name: field.name },
    h('option', { value: '' }, field.name === 'model' ? 'Default (the loaded model)' : 'Default'),
    choices.map((m) => h('option', { value: m.id }, m.architecture ? `${m.name} · ${m.architecture}` : m.name)));
}

function control(field, models, actions) {
  const id = `f-${field.name}`;
  switch (field.type) {
    case 'string':
      return h('textarea', {
        id, name: field.name, rows: field.name === 'prompt' ? 3 : 2, maxLength: field.max_length ?? undefined,
        value: field.default ?? '', placeholder: field.name === 'prompt' ? 'Describe the image' : '',
      });
    case 'integer':
    case 'number':
      return numberInput(field);
    case 'boolean':
      return h('input', { type: 'checkbox', id, name: field.name, checked: Boolean(field.default) });
    case 'choice':
      return h('select', { id, name: field.name },
        field.default === undefined ? h('option', { value: '' }, 'Model default') : null,
        (field.enum || []).map((value) => h('option', { value, selected: value === field.default }, value)));
    case 'model':
      return modelSelect(field, models);
    case 'seed':
      return h('div', { class: 'seed' },
        h('input', { type: 'number', id, name: field.name, step: 1, min: -1, placeholder: 'random', inputMode: 'numeric' }),
        h('button', { type: 'button', class: 'ghost', onclick: actions.randomSeed, title: 'A random seed each time' }, 'Random'),
        h('button', { type: 'button', class: 'ghost', onclick: actions.reuseSeed, title: 'The seed of the newest result' },
          'Reuse'));
    case 'loras':
      return loraPicker(field, models);
    case 'image':
      return h('input', { type: 'file', id, name: field.name, accept: 'image/png,image/jpeg,image/webp' });
    default:
      return h('input', { type: 'text', id, name: field.name });
  }
}

/** The line under a control: a number's range (its doc goes in the control's title), else the doc. */
function hint(field) {
  if (field.type !== 'integer' && field.type !== 'number') return field.doc || '';
  const parts = [];
  if (field.minimum !== undefined && field.maximum !== undefined) parts.push(`${field.minimum}–${field.maximum}`);
  if (field.multiple_of) parts.push(`steps of ${field.multiple_of}`);
  return parts.join(', ');
}

/** One labelled field: the control, its hint and its error line (tied to the control by aria-describedby). */
export function fieldRow(field, models, actions) {
  const input = control(field, models, actions);
  const target = input.matches('input, select, textarea') ? input
    : input.querySelector('[data-target]') || input.querySelector('input');
  const hintId = `hint-${field.name}`;
  const errorId = `err-${field.name}`;
  target.setAttribute('aria-describedby', `${hintId} ${errorId}`);
  if (field.doc) target.title = field.doc;
  const label = h('label', { for: target.id }, labelOf(field.name));
  const row = h('div', { class: `field field-${field.type}`, 'data-field': field.name },
    field.type === 'boolean' ? h('div', { class: 'check' }, input, label) : [label, input],
    h('p', { class: 'hint', id: hintId }, hint(field)),
    h('p', { class: 'field-error', id: errorId, hidden: true }));
  return row;
}

/** The request body the form's controls in `root` say for `fields` (empty optional values left out). */
export function readValues(root, fields, images = {}) {
  const body = {};
  for (const field of fields) {
    const el = root.querySelector(`#f-${CSS.escape(field.name)}`);
    if (!el) continue;
    if (field.type === 'image') {
      if (images[field.name]) body[field.name] = images[field.name];
    } else if (field.type === 'boolean') body[field.name] = el.checked;
    else if (field.type === 'string') body[field.name] = el.value;
    else if (el.value === '') continue;
    else if (['integer', 'number', 'seed'].includes(field.type)) body[field.name] = Number(el.value);
    else if (field.type === 'loras') {
      // a job's own list (reused) carries more than the request takes: the id (or name) and the weight
      const loras = parseLoras(el.value).map((i) => (typeof i === 'string' ? i
        : { name: i.id || i.name, multiplier: Number(i.multiplier ?? i.strength ?? 1) }));
      if (loras.length) body[field.name] = loras;
    }
    else body[field.name] = el.value;
  }
  return body;
}

/** What is wrong with `body` by the schema's own limits, as [field name, message] pairs (the server checks
 * again, and more: this only spares a round trip for what the schema already says). */
export function problems(body, fields, kind) {
  const out = [];
  for (const field of fields) {
    const value = body[field.name];
    if ((field.required_for || []).includes(kind) && (value === undefined || String(value).trim() === '')) {
      out.push([field.name, 'required']);
    } else if (typeof value === 'number' && field.type !== 'seed') {
      if (Number.isNaN(value)) out.push([field.name, 'expected a number']);
      else if (field.type === 'integer' && !Number.isInteger(value)) out.push([field.name, 'expected a whole number']);
      else if (field.minimum !== undefined && value < field.minimum) out.push([field.name, `at least ${field.minimum}`]);
      else if (field.maximum !== undefined && value > field.maximum) out.push([field.name, `at most ${field.maximum}`]);
      else if (field.multiple_of && value % field.multiple_of !== 0) {
        out.push([field.name, `a multiple of ${field.multiple_of}`]);
      }
    }
  }
  return out;
}

/** The raw values of the controls (what localStorage keeps; images are not kept). */
export function rawValues(root, fields) {
  const out = {};
  for (const field of fields) {
    const el = root.querySelector(`#f-${CSS.escape(field.name)}`);
    if (!el || field.type === 'image') continue;
    out[field.name] = field.type === 'boolean' ? el.checked : el.value;
  }
  return out;
}

/** Set controls from `values` (name -> raw value); unknown names and values a select lacks are skipped. */
export function setValues(root, values) {
  for (const [name, value] of Object.entries(values)) {
    const el = root.querySelector(`#f-${CSS.escape(name)}`);
    if (!el || el.type === 'file' || value === null || value === undefined) continue;
    if (el.type === 'checkbox') el.checked = Boolean(value);
    else if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === String(value))) continue;
    else if (typeof value === 'object') el.value = JSON.stringify(value);  // a list of LoRAs
    else el.value = String(value);
    el.refresh?.();
  }
}

/** Clear every field's error. */
export function clearErrors(root) {
  for (const line of root.querySelectorAll('.field-error')) {
    line.hidden = true;
    line.textContent = '';
  }
  for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Show `message` next to field `name`; false when the form has no such field. */
export function showError(root, name, message) {
  const line = root.querySelector(`#err-${CSS.escape(name)}`);
  const el = root.querySelector(`#f-${CSS.escape(name)}`);
  if (!line) return false;
  line.textContent = message;
  line.hidden = false;
  if (el) {
    el.setAttribute('aria-invalid', 'true');
    const folded = el.closest('details');
    if (folded) folded.open = true;
  }
  return true;
}
