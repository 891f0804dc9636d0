// The Gallery view: every past result (GET /api/gallery), searched by prompt text, model, size, dates and stars;
// thumbnails loaded lazily, the next page as the end of the grid comes into view; a full view with keyboard
// navigation, star, download, delete and reuse; two results compared side by side or with a slider.

import { ApiError, get, request } from '../api.js';
import { h } from '../dom.js';
import { reuseActions } from '../reuse.js';
import { changed, read, subscribe } from '../store.js';

const PAGE = 48;

function full(output) {
  return output.signed_url || output.url;
}

function seedOf(item) {
  return item.job.result?.seeds?.[item.index] ?? item.job.parameters?.seed;
}

function promptOf(job) {
  return job.parameters?.prompt || '(no prompt)';
}

function meta(item) {
  const p = item.job.parameters || {};
  const seed = seedOf(item);
  const when = item.job.created_at ? new Date(item.job.created_at * 1000).toLocaleString() : null;
  return [p.width && `${p.width}×${p.height}`, p.steps && `${p.steps} steps`, seed !== undefined && `seed ${seed}`,
    p.model_name || p.model, p.sampling_method, when].filter(Boolean).join(' · ');
}

/** Local midnight of a date field's value (YYYY-MM-DD), `days` later, in epoch seconds. */
function midnight(value, days = 0) {
  const date = new Date(`${value}T00:00`);
  date.setDate(date.getDate() + days);
  return Math.floor(date.getTime() / 1000);
}

export class GalleryView {
  constructor(root, viewer, compare) {
    this.root = root;
    this.viewer = viewer;
    this.compareDialog = compare;
    this.query = new URLSearchParams(); // the current search
    this.items = []; // {job, output, index}, newest first
    this.cursor = null;
    this.total = 0;
    this.loading = false;
    this.selected = []; // keys of the (at most two) items chosen for comparison
    this.current = -1; // the item the full view shows
    this.generation = 0; // bumps with each new search, so a late page of an old one is dropped
    this.build();
    subscribe('models', () => this.fillModels());
    this.viewer.addEventListener('keydown', (event) => this.viewerKey(event));
    this.viewer.addEventListener('close', () => this.afterViewer());
    if ('IntersectionObserver' in window) {
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.more();
      }, { rootMargin: '400px' });
      this.observer.observe(this.moreButton);
    }
  }

  build() {
    const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
    this.text = h('input', { id: 'g-text', type: 'search', name: 'q', placeholder: 'Words of the prompt',
      autocomplete: 'off', maxLength: 500 });
    this.model = h('select', { id: 'g-model', name: 'model' });
    this.size = h('input', { id: 'g-size', name: 'size', placeholder: 'e.g. 512x512', autocomplete: 'off',
      inputMode: 'text', 'aria-describedby': 'g-size-error' });
    this.since = h('input', { id: 'g-since', type: 'date', name: 'since' });
    this.until = h('input', { id: 'g-until', type: 'date', name: 'until' });
    this.starred = h('input', { id: 'g-starred', type: 'checkbox', name: 'starred' });
    this.sizeError = h('p', { class: 'field-error', id: 'g-size-error', hidden: true });
    this.form = h('form', { class: 'gallery-search', role: 'search', 'aria-label': 'Search the gallery', novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.search(); } },
    h('div', { class: 'field gallery-text' }, h('label', { for: 'g-text' }, 'Search prompts'), this.text),
    field('g-model', 'Filter by model', this.model),
    h('div', { class: 'field' }, h('label', { for: 'g-size' }, 'Size'), this.size, this.sizeError),
    field('g-since', 'From date', this.since),
    field('g-until', 'To date', this.until),
    h('div', { class: 'check gallery-starred' }, this.starred, h('label', { for: 'g-starred' }, 'Starred only')),
    h('div', { class: 'gallery-search-actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'button', class: 'ghost', onclick: () => this.reset() }, 'Reset')));
    this.starred.addEventListener('change', () => this.search());
    this.model.addEventListener('change', () => this.search());
    this.status = h('p', { class: 'gallery-status', role: 'status', 'aria-live': 'polite' });
    this.notice = h('p', { class: 'notice', role: 'alert', hidden: true });
    this.grid = h('ul', { class: 'gallery-grid', 'aria-label': 'Results found' });
    this.moreButton = h('button', { type: 'button', class: 'ghost gallery-more', hidden: true, onclick: () => this.more() },
      'Load more');
    this.compareBar = h('div', { class: 'compare-bar', hidden: true });
    this.root.append(this.form, this.status, this.notice, this.grid, this.moreButton, this.compareBar);
  }

  /** The view became visible: fill the model choices and search again (the server's state is the truth). */
  show() {
    this.fillModels();
    this.search();
  }

  fillModels() {
    const models = (read('models') || []).filter((m) => m.load_as);
    const chosen = this.model.value;
    this.model.replaceChildren(h('option', { value: '' }, 'Any model'),
      ...models.map((m) => h('option', { value: m.id, selected: m.id === chosen }, m.name)));
  }

  reset() {
    this.form.reset();
    this.search();
  }

  params() {
    const out = new URLSearchParams();
    if (this.text.value.trim()) out.set('q', this.text.value.trim());
    if (this.model.value) out.set('model', this.model.value);
    const size = this.size.value.trim().match(/^(\d{1,5})\s*[x×*,]\s*(\d{1,5})$/i);
    if (size) {
      out.set('width', size[1]);
      out.set('height', size[2]);
    }
    if (this.since.value) out.set('since', String(midnight(this.since.value)));
    if (this.until.value) out.set('until', String(midnight(this.until.value, 1)));
    if (this.starred.checked) out.set('starred', 'true');
    out.set('limit', String(PAGE));
    return out;
  }

  /** Search from the first page. */
  async search() {
    const bad = this.size.value.trim() && !/^\d{1,5}\s*[x×*,]\s*\d{1,5}$/i.test(this.size.value.trim());
    this.sizeError.hidden = !bad;
    this.sizeError.textContent = bad ? 'width x height, e.g. 512x512' : '';
    if (bad) this.size.setAttribute('aria-invalid', 'true');
    else this.size.removeAttribute('aria-invalid');
    if (bad) return;
    this.generation += 1;
    this.items = [];
    this.cursor = null;
    this.grid.replaceChildren();
    this.query = this.params(); // the next pages are of this search, whatever the form says meanwhile
    await this.load(this.query, this.generation);
  }

  /** The next page, if there is one and none is loading. */
  async more() {
    if (this.loading || this.cursor === null || this.root.hidden) return;
    const params = new URLSearchParams(this.query);
    params.set('cursor', String(this.cursor));
    await this.load(params, this.generation);
  }

  async load(params, generation) {
    this.loading = true;
    this.root.setAttribute('aria-busy', 'true');
    this.notice.hidden = true;
    try {
      const answer = await get(`/api/gallery?${params}`);
      if (generation !== this.generation) return;
      const added = answer.jobs.flatMap((job) => job.outputs.map((output, index) => ({ job, output, index })));
      this.items.push(...added);
      this.cursor = answer.next_cursor;
      this.total = answer.total;
      this.grid.append(...added.map((item) => this.tile(item)));
    } catch (error) {
      this.notice.textContent = `The gallery could not be read: ${error.message}`;
      this.notice.hidden = false;
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.root.removeAttribute('aria-busy');
        this.renderStatus();
        // the observer speaks only when the end of the grid comes into view: when a page did not push it out
        // of view, ask for the next one now
        if (this.observer && this.cursor !== null && this.notice.hidden
            && this.moreButton.getBoundingClientRect().top < innerHeight + 400) this.more();
      }
    }
  }

  renderStatus() {
    this.moreButton.hidden = this.cursor === null;
    const jobs = new Set(this.items.map((i) => i.job.id)).size;
    this.status.textContent = this.items.length === 0 ? 'No images match.'
      : `${this.items.length} image${this.items.length === 1 ? '' : 's'} from ${jobs} of ${this.total} job${this.total === 1 ? '' : 's'}`;
    this.renderCompareBar();
  }

  key(item) {
    return `${item.job.id}/${item.index}`;
  }

  tile(item) {
    const prompt = promptOf(item.job);
    const key = this.key(item);
    const pick = h('input', { type: 'checkbox', class: 'tile-pick', 'aria-label': `Select for comparison: ${prompt}`,
      checked: this.selected.includes(key), onchange: (event) => this.pick(key, event.target.checked) });
    return h('li', { class: 'tile', 'data-key': key, 'data-job-id': item.job.id },
      h('button', { type: 'button', class: 'image-button', 'aria-label': `Open image: ${prompt}`,
        onclick: () => this.open(this.items.findIndex((i) => this.key(i) === key)) },
      h('img', { src: item.output.thumbnail_url, alt: prompt, loading: 'lazy', decoding: 'async', width: 256, height: 256 })),
      h('span', { class: 'tile-star', hidden: !item.job.starred, title: 'Starred' }, '★',
        h('span', { class: 'visually-hidden' }, ' starred')),
      pick);
  }

  // -- the full view --------------------------------------------------------------------------

  /** Show item `index` in the full view. */
  open(index) {
    if (index < 0 || index >= this.items.length) return;
    this.current = index;
    const item = this.items[index];
    const { job, output } = item;
    const p = job.parameters || {};
    const close = () => this.viewer.close();
    const seed = seedOf(item);
    const star = h('button', { type: 'button', 'aria-pressed': String(Boolean(job.starred)),
      onclick: () => this.toggleStar(item) }, job.starred ? '★ Starred' : '☆ Star');
    star.setAttribute('aria-label', 'Star');
    const confirm = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion', hidden: true },
      h('span', {}, job.outputs.length > 1 ? `Delete this job's ${job.outputs.length} images?` : 'Delete this image?'),
      h('button', { type: 'button', class: 'danger', onclick: () => this.remove(item) }, 'Delete for good'),
      h('button', { type: 'button', class: 'ghost', onclick: () => { confirm.hidden = true; deleteButton.focus(); } }, 'Keep'));
    const deleteButton = h('button', { type: 'button', class: 'danger',
      onclick: () => { confirm.hidden = false; confirm.querySelector('button').focus(); } }, 'Delete');
    this.viewer.replaceChildren(
      h('div', { class: 'viewer-head' },
        h('h2', { id: 'gallery-viewer-title' }, `Image ${index + 1} of ${this.items.length}`),
        h('div', { class: 'viewer-nav' },
          h('button', { type: 'button', class: 'ghost', 'aria-label': 'Previous image', disabled: index === 0,
            onclick: () => { this.open(this.current - 1); this.refocus('Previous image'); } }, '←'),
          h('button', { type: 'button', class: 'ghost', 'aria-label': 'Next image', disabled: index === this.items.length - 1,
            onclick: () => { this.open(this.current + 1); this.refocus('Next image'); } }, '→'),
          h('button', { type: 'button', class: 'ghost', onclick: close }, 'Close'))),
      h('img', { class: 'viewer-image', src: full(output), alt: promptOf(job) }),
      h('p', { class: 'viewer-prompt' }, promptOf(job)),
      p.negative_prompt ? h('p', { class: 'cap-meta' }, `Negative: ${p.negative_prompt}`) : null,
      h('p', { class: 'cap-meta' }, meta(item)),
      h('div', { class: 'viewer-actions' }, star,
        h('a', { class: 'button', href: `${output.url}${output.url.includes('?') ? '&' : '?'}download=true`,
          download: `${job.id}-${output.filename}` }, 'Download'),
        deleteButton),
      confirm,
      ...reuseActions({ job, seed, image: full(output), close }));
    this.viewer.setAttribute('aria-labelledby', 'gallery-viewer-title');
    if (!this.viewer.open) this.viewer.showModal();
  }

  viewerKey(event) {
    if (event.target.matches('input, textarea, select')) return;
    const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (!step || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    const to = this.current + step;
    if (to < 0 || to >= this.items.length) return;
    this.open(to);
    this.refocus(step < 0 ? 'Previous image' : 'Next image');
  }

  /** After the full view is redrawn: focus the control named `label`, else the next one that can be. */
  refocus(label) {
    const names = [label, 'Next image', 'Previous image'];
    const target = names.map((n) => this.viewer.querySelector(`[aria-label="${n}"]:not(:disabled)`)).find(Boolean);
    (target || this.viewer.querySelector('button:not(:disabled)'))?.focus();
  }

  /** Focus the tile of the item the viewer showed last, so the keyboard carries on from there. */
  afterViewer() {
    const item = this.items[this.current];
    if (item && !this.root.hidden) this.grid.querySelector(`li[data-key="${CSS.escape(this.key(item))}"] .image-button`)?.focus();
  }

  async toggleStar(item) {
    const { job } = item;
    const starred = !job.starred;
    try {
      await request(starred ? 'PUT' : 'DELETE', `/api/queue/job/${encodeURIComponent(job.id)}/star`);
    } catch (error) {
      this.showError(error);
      return;
    }
    job.starred = starred;
    for (const li of this.grid.querySelectorAll(`li[data-job-id="${CSS.escape(job.id)}"] .tile-star`)) li.hidden = !starred;
    this.open(this.current);
    this.viewer.querySelector('[aria-pressed]')?.focus();
  }

  async remove(item) {
    const { job } = item;
    try {
      await request('DELETE', `/api/queue/job/${encodeURIComponent(job.id)}`);
    } catch (error) {
      this.showError(error);
      return;
    }
    forget(job.id);
    const at = this.current;
    this.items = this.items.filter((i) => i.job.id !== job.id);
    this.selected = this.selected.filter((key) => !key.startsWith(`${job.id}/`));
    for (const li of this.grid.querySelectorAll(`li[data-job-id="${CSS.escape(job.id)}"]`)) li.remove();
    this.total = Math.max(0, this.total - 1);
    this.renderStatus();
    if (this.items.length) {
      this.open(Math.min(at, this.items.length - 1));
      this.viewer.querySelector('[aria-label="Star"]')?.focus();
    } else {
      this.current = -1;
      this.viewer.close();
      this.text.focus();
    }
  }

  showError(error) {
    const message = error instanceof ApiError ? error.message : String(error);
    const line = h('p', { class: 'notice', role: 'alert' }, message);
    this.viewer.querySelector('.notice')?.remove();
    this.viewer.append(line);
  }

  // -- compare --------------------------------------------------------------------------------

  pick(key, on) {
    this.selected = this.selected.filter((k) => k !== key);
    if (on) this.selected.push(key);
    while (this.selected.length > 2) {
      const dropped = this.selected.shift();
      const box = this.grid.querySelector(`li[data-key="${CSS.escape(dropped)}"] .tile-pick`);
      if (box) box.checked = false;
    }
    this.renderCompareBar();
  }

  renderCompareBar() {
    const n = this.selected.length;
    this.compareBar.hidden = n === 0;
    this.compareBar.replaceChildren(
      h('span', {}, n === 2 ? '2 images chosen' : 'Choose one more image to compare'),
      h('button', { type: 'button', class: 'primary', disabled: n !== 2, onclick: () => this.compare() }, 'Compare'),
      h('button', { type: 'button', class: 'ghost', onclick: () => this.clearPicks() }, 'Clear'));
  }

  clearPicks() {
    this.selected = [];
    for (const box of this.grid.querySelectorAll('.tile-pick')) box.checked = false;
    this.renderCompareBar();
  }

  compare(mode = 'slider') {
    const [a, b] = this.selected.map((key) => this.items.find((i) => this.key(i) === key));
    if (!a || !b) return;
    const image = (item, cls) => h('img', { class: cls, src: full(item.output), alt: promptOf(item.job) });
    const label = (item, side) => h('figcaption', {}, h('span', { class: 'cap-prompt' }, `${side}: ${promptOf(item.job)}`),
      h('span', { class: 'cap-meta' }, meta(item)));
    const body = h('div', { class: 'compare-body' });
    const draw = (which) => {
      if (which === 'side') {
        body.replaceChildren(h('div', { class: 'compare-side' },
          h('figure', {}, image(a, 'compare-image'), label(a, 'Left')),
          h('figure', {}, image(b, 'compare-image'), label(b, 'Right'))));
        return;
      }
      const stage = h('div', { class: 'compare-stage' }, image(b, 'compare-under'), image(a, 'compare-over'));
      const range = h('input', { type: 'range', min: 0, max: 100, step: 1, value: 50, 'aria-label': 'Compare position',
        'aria-valuetext': '50% left image' });
      const place = () => {
        stage.style.setProperty('--pos', `${range.value}%`);
        range.setAttribute('aria-valuetext', `${range.value}% left image`);
      };
      range.addEventListener('input', place);
      place();
      body.replaceChildren(h('div', { class: 'compare-frame' }, stage, range),
        h('div', { class: 'compare-captions' }, label(a, 'Left'), label(b, 'Right')));
    };
    const modeSwitch = h('fieldset', { class: 'modes' }, h('legend', { class: 'visually-hidden' }, 'Compare how'),
      [['slider', 'Slider'], ['side', 'Side by side']].map(([value, text]) => h('label', { class: 'mode' },
        h('input', { type: 'radio', name: 'compare-mode', value, checked: value === mode, onchange: () => draw(value) }),
        h('span', {}, text))));
    this.compareDialog.replaceChildren(
      h('div', { class: 'viewer-head' }, h('h2', { id: 'compare-title' }, 'Compare'),
        h('button', { type: 'button', class: 'ghost', onclick: () => this.compareDialog.close() }, 'Close')),
      modeSwitch, body);
    draw(mode);
    this.compareDialog.showModal();
    this.compareDialog.querySelector('input[type="range"]')?.focus();
  }
}

/** Drop a deleted job from the jobs the other views show. */
function forget(jobId) {
  if (read('jobs').delete(jobId)) changed('jobs');
}
