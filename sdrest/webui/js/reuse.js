// Reusing a result: any view asks for it with `sdrest:reuse` on the document, and the Generate form takes it.
//
//   document.dispatchEvent(new CustomEvent('sdrest:reuse', { detail: { params, mode, image } }))
//
// `params`: a subset of a job's parameters (prompt, seed, width, height, ... as GET /api/queue/job/{id} states
// them); `mode`: 'txt2img' | 'img2img' | 'inpaint' | 'upscale' | null (keep the current one); `image`: the URL
// of an image to use as the input, or null. The sender then navigates to #/generate.
// This module applies `params` (and selects `mode` where the form has it) through form.js; taking `image` in
// is the Generate view's part.

import { h } from './dom.js';
import { setValues } from './form.js';

export const REUSE_EVENT = 'sdrest:reuse';

/** Ask for a reuse, then show the Generate view. */
export function requestReuse({ params = {}, mode = null, image = null } = {}) {
  document.dispatchEvent(new CustomEvent(REUSE_EVENT, { detail: { params, mode, image } }));
  location.hash = '#/generate';
}

/** A job's parameters as the form's raw values: LoRAs as "name:0.8, other" text, other lists and objects left out. */
export function formValues(params) {
  const out = {};
  for (const [name, value] of Object.entries(params || {})) {
    if (value === null || value === undefined) continue;
    if (name === 'loras' && Array.isArray(value)) {
      out.loras = value.map((l) => (typeof l === 'string' ? l
        : l.multiplier === undefined || l.multiplier === 1 ? l.name : `${l.name}:${l.multiplier}`)).join(', ');
    } else if (typeof value !== 'object') out[name] = value;
  }
  return out;
}

/** The generation mode that reruns a job of `kind` (none for kinds the form does not offer). */
const MODES = { txt2img: 'txt2img', img2img: 'img2img', inpainting: 'inpaint' };

/**
 * The "Reuse" and "Send to" button groups for one result, as any viewer shows them: reuse all, the prompt, the
 * seed or the size; send the image to img2img, inpaint or upscale. `close()` runs before the reuse is asked for.
 */
export function reuseActions({ job, seed, image, close = () => {} }) {
  const p = job.parameters || {};
  const reuse = (params, mode = null, input = null) => { close(); requestReuse({ params, mode, image: input }); };
  const prompt = { prompt: p.prompt ?? '', negative_prompt: p.negative_prompt ?? '' };
  const url = new URL(image, location.href).href;
  return [
    h('div', { class: 'viewer-actions', role: 'group', 'aria-label': 'Reuse' },
      h('button', { type: 'button', onclick: () => reuse({ ...p, seed }, MODES[job.kind] || null) }, 'Reuse all'),
      h('button', { type: 'button', onclick: () => reuse(prompt) }, 'Reuse prompt'),
      h('button', { type: 'button', onclick: () => reuse({ seed }) }, 'Reuse seed'),
      h('button', { type: 'button', onclick: () => reuse({ width: p.width, height: p.height }) }, 'Reuse size')),
    h('div', { class: 'viewer-actions', role: 'group', 'aria-label': 'Send to' },
      h('button', { type: 'button', class: 'ghost', onclick: () => reuse(prompt, 'img2img', url) }, 'Send to img2img'),
      h('button', { type: 'button', class: 'ghost', onclick: () => reuse(prompt, 'inpaint', url) }, 'Send to inpaint'),
      h('button', { type: 'button', class: 'ghost', onclick: () => reuse({}, 'upscale', url) }, 'Send to upscale')),
  ];
}

/** Apply a reuse request's `detail` to the generation form `form`. */
export function applyReuse(form, { params = {}, mode = null } = {}) {
  const radio = mode ? form.querySelector(`input[name="mode"][value="${CSS.escape(mode)}"]`) : null;
  if (radio && !radio.checked) radio.click(); // the view rebuilds its fields for the mode
  setValues(form, formValues(params));
  form.dispatchEvent(new Event('input', { bubbles: true })); // the Generate view keeps the form's values
}

/** Listen for reuse requests and apply them to `form`. */
export function setupReuse(form) {
  document.addEventListener(REUSE_EVENT, (event) => applyReuse(form, event.detail || {}));
}
