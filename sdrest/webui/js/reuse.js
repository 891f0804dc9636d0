// Reusing a result: any view asks for it with `sdrest:reuse` on the document, and the Generate form takes it.
//
//   document.dispatchEvent(new CustomEvent('sdrest:reuse', { detail: { params, mode, image } }))
//
// `params`: a subset of a job's parameters (prompt, seed, width, height, ... as GET /api/queue/job/{id} states
// them); `mode`: 'txt2img' | 'img2img' | 'inpaint' | 'upscale' | null (keep the current one); `image`: the URL
// of an image to use as the input, or null. The sender then navigates to #/generate.
// This module applies `params` (and selects `mode` where the form has it) through form.js; taking `image` in
// is the Generate view's part.

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
