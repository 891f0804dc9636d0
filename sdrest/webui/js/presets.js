// Presets and prompt templates from the models dir (GET /api/templates): a "Preset" select sets the form's
// fields, "Prompt template" and "Negative template" fill the prompts ("{prompt}" in a template stands for what
// the field already says). Mounted into the Generate view's #presets-slot; the form is driven through its own
// controls (values set, then the events the form listens to), so it saves and reacts as if typed.

import { get } from './api.js';
import { h } from './dom.js';

const SELECTS = [
  ['preset', 'Preset', 'Choose…'],
  ['prompt', 'Prompt template', 'Choose…'],
  ['neg_prompt', 'Negative template', 'Choose…'],
];
const TARGET = { prompt: 'prompt', neg_prompt: 'negative_prompt' };

function control(form, name) {
  return form.querySelector(`#f-${CSS.escape(name)}`);
}

function setField(el, value) {
  if (el.type === 'checkbox') el.checked = Boolean(value);
  else if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === String(value))) return false;
  else el.value = String(value);
  el.dispatchEvent(new Event('input', { bubbles: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
}

/** Set the form's fields from a preset's parameters; the names it has no field for. The model goes first: choosing
 * one applies its architecture's defaults, which the preset's own values then override. */
export function applyPreset(form, values) {
  const skipped = [];
  const names = Object.keys(values).sort((a, b) => (b === 'model') - (a === 'model'));
  for (const name of names) {
    const el = control(form, name);
    const value = values[name];
    if (!el || el.type === 'file' || value === null || typeof value === 'object' || !setField(el, value)) {
      skipped.push(name);
    }
  }
  return skipped;
}

/** Fill prompt field `name` from a template's text ("{prompt}" keeps what the field said). */
export function applyTemplate(form, name, text) {
  const el = control(form, name);
  if (!el) return false;
  const current = el.value.trim();
  return setField(el, text.includes('{prompt}') ? text.replaceAll('{prompt}', current) : text.trim());
}

/** Fill `slot` with the selects (nothing when the models dir has no presets or templates). */
export async function mountPresets(slot, form) {
  slot.replaceChildren();
  let templates;
  try {
    templates = (await get('/api/templates')).templates || [];
  } catch {
    return;  // the UI works without them
  }
  const status = h('p', { class: 'presets-status', role: 'status' });
  const rows = SELECTS.map(([kind, label, placeholder]) => {
    const mine = templates.filter((t) => t.kind === kind);
    if (!mine.length) return null;
    const id = `tpl-${kind}`;
    const select = h('select', { id, onchange: () => apply(kind, select) },
      h('option', { value: '' }, placeholder),
      mine.map((t) => h('option', { value: t.id }, t.name)));
    return h('div', { class: 'field' }, h('label', { for: id }, label), select);
  }).filter(Boolean);
  if (!rows.length) return;

  async function apply(kind, select) {
    const chosen = select.value;
    if (!chosen) return;
    const name = select.selectedOptions[0].textContent;
    try {
      const { content } = await get(`/api/templates/${chosen.split('/').map(encodeURIComponent).join('/')}`);
      if (kind === 'preset') {
        const skipped = applyPreset(form, content);
        status.textContent = `Applied preset ${name}${skipped.length ? ` (no field for: ${skipped.join(', ')})` : ''}.`;
      } else {
        applyTemplate(form, TARGET[kind], content);
        status.textContent = `Filled from ${name}.`;
      }
    } catch (error) {
      status.textContent = `${name}: ${error.message}`;
    }
    select.value = '';
  }

  slot.replaceChildren(h('div', { class: 'presets' }, rows), status);
}
