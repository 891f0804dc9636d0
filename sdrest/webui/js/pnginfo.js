// Generation parameters read from a dropped image, in the browser: a PNG's text chunks (tEXt, zTXt, iTXt) and
// A1111's "parameters" text in them, which our own outputs carry too (sdrest/infotext.py writes it; this reads
// it back as its parse_infotext does). Nothing here is shown as HTML: the values go into form controls.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The most text read from one chunk (a PNG may be hostile: a zTXt chunk can inflate to anything). */
const MAX_TEXT = 1 << 20;

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  const reader = stream.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_TEXT) {
      reader.cancel();
      throw new Error('a text chunk too large');
    }
    parts.push(value);
  }
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

/** The text chunks of the PNG in `buffer` (an ArrayBuffer), keyword -> text; empty when it is not a PNG. */
export async function pngTexts(buffer) {
  const bytes = new Uint8Array(buffer);
  const out = new Map();
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) return out;
  const view = new DataView(buffer);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, Math.min(at + 8 + length, bytes.length));
    at += 12 + length;
    if (type === 'IEND') break;
    if (!['tEXt', 'zTXt', 'iTXt'].includes(type)) continue;
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const keyword = latin1.decode(data.subarray(0, nul));
    try {
      if (type === 'tEXt') out.set(keyword, latin1.decode(data.subarray(nul + 1)));
      else if (type === 'zTXt') out.set(keyword, latin1.decode(await inflate(data.subarray(nul + 2))));
      else {
        const compressed = data[nul + 1] === 1;
        const language = data.indexOf(0, nul + 3);
        const translated = language < 0 ? -1 : data.indexOf(0, language + 1);
        if (translated < 0) continue;
        const text = data.subarray(translated + 1);
        out.set(keyword, utf8.decode(compressed ? await inflate(text) : text));
      }
    } catch {
      // a broken chunk says nothing: skip it
    }
  }
  return out;
}

const FIELD = /\s*([\w ()-]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;

/** A1111's "parameters" text read back: prompt, negative_prompt and its "Key: value" fields (as strings). */
export function parseInfotext(text) {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let last = lines.length > 1 ? lines[lines.length - 1] : lines[0];
  const fields = [...last.matchAll(FIELD)].filter((m) => m[0].trim());
  // A1111's own rule: the last line holds the settings when it has at least three of them
  let body = lines;
  if (fields.length >= 3) body = lines.slice(0, -1);
  else last = '';
  const prompt = [];
  const negative = [];
  let inNegative = false;
  for (let line of body) {
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      line = line.slice('Negative prompt:'.length).trimStart();
    }
    (inNegative ? negative : prompt).push(line);
  }
  const out = { prompt: prompt.join('\n').trim() };
  if (inNegative) out.negative_prompt = negative.join('\n').trim();
  if (!last) return out;
  for (const [, key, raw] of fields) {
    let value = raw.trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1).replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out[key.trim()] = value;
  }
  return out;
}

// A1111's names for sd.cpp's samplers and schedules, as sdrest/a1111_names.py maps them (labels and aliases);
// a name sd.cpp has itself ("euler_a") is taken as it is.
const SAMPLERS = {
  'dpm++ 2m': 'dpm++2m', 'dpm++ 2s a': 'dpm++2s_a', 'euler a': 'euler_a', euler: 'euler', heun: 'heun',
  dpm2: 'dpm2', ddim: 'ddim_trailing', lcm: 'lcm', 'res multistep': 'res_multistep', 'res 2s': 'res_2s',
};
const SCHEDULERS = {
  automatic: '', uniform: 'discrete', karras: 'karras', exponential: 'exponential', 'sgm uniform': 'sgm_uniform',
  sgmuniform: 'sgm_uniform', 'kl optimal': 'kl_optimal', 'align your steps': 'ays', simple: 'simple',
  normal: 'discrete', 'align your steps gits': 'gits',
};

function known(name, table, choices) {
  const key = name.trim().toLowerCase();
  const value = key in table ? table[key] : key;
  return value === '' || choices.includes(value) ? value : undefined;
}

/** The sd.cpp sampler (and schedule, for an old combined name like "DPM++ 2M Karras") an A1111 label names. */
function sampler(label, samplers, schedulers) {
  const whole = known(label, SAMPLERS, samplers);
  if (whole !== undefined) return { sampler: whole };
  const words = label.trim().split(/\s+/);
  for (let cut = words.length - 1; cut > 0; cut -= 1) {
    const head = known(words.slice(0, cut).join(' '), SAMPLERS, samplers);
    const tail = known(words.slice(cut).join(' '), SCHEDULERS, schedulers);
    if (head !== undefined && tail !== undefined) return { sampler: head, scheduler: tail };
  }
  return {};
}

const NUMBERS = {
  Steps: 'steps', 'CFG scale': 'cfg_scale', Seed: 'seed', 'Denoising strength': 'strength', 'Clip skip': 'clip_skip',
  'Distilled CFG Scale': 'guidance', Eta: 'eta', Shift: 'flow_shift', 'Control strength': 'control_strength',
  'Video frames': 'video_frames',
};
const LORA_TAG = /<lora:([^:>]{1,256})(?::([^:>]{1,32}))?(?::[^>]{0,64})?>/g;

/**
 * The form values (field name -> raw value) that `info` (parseInfotext's answer) says, and what it named that
 * this server lacks. `samplers`, `schedulers`: the server's names; `models`: the registry's entries.
 */
export function formValues(info, { samplers = [], schedulers = [], models = [] } = {}) {
  const values = {};
  const missing = [];
  const byName = (kinds, name) => {
    const wanted = name.toLowerCase();
    return models.find((m) => kinds.includes(m.type) && [m.id, m.name, m.filename, m.path]
      .some((n) => n && String(n).toLowerCase() === wanted));
  };
  let prompt = info.prompt || '';
  const loras = [];
  prompt = prompt.replace(LORA_TAG, (tag, name, weight) => {
    const entry = byName(['lora'], name);
    if (!entry) return tag;  // the server reports it: better than losing it
    const multiplier = Number(weight ?? 1);
    loras.push({ name: entry.id, multiplier: Number.isFinite(multiplier) ? multiplier : 1 });
    return '';
  }).replace(/[ \t]{2,}/g, ' ').trim();
  values.prompt = prompt;
  values.negative_prompt = info.negative_prompt || '';
  if (loras.length) values.loras = loras;
  for (const [key, name] of Object.entries(NUMBERS)) {
    if (info[key] !== undefined && info[key] !== '' && Number.isFinite(Number(info[key]))) values[name] = info[key];
  }
  const size = /^(\d+)\s*x\s*(\d+)$/.exec(info.Size || '');
  if (size) [, values.width, values.height] = size;
  if (info.Sampler) {
    const found = sampler(info.Sampler, samplers, schedulers);
    if (found.sampler !== undefined) values.sampling_method = found.sampler;
    else missing.push(`sampler ${info.Sampler}`);
    if (found.scheduler !== undefined) values.scheduler = found.scheduler;
  }
  if (info['Schedule type']) {
    const schedule = known(info['Schedule type'], SCHEDULERS, schedulers);
    if (schedule !== undefined) values.scheduler = schedule;
  }
  if (info.Model) {
    const entry = byName(['checkpoint', 'diffusion_model'], info.Model);
    if (entry) values.model = entry.id;
    else missing.push(`model ${info.Model}`);
  }
  return { values, missing };
}
