// The Results region: the newest image large, the other finished images as thumbnails, and a viewer
// (full size, download, reuse of the parameters, sending the image to img2img, inpaint or upscale).

import { h } from '../dom.js';
import { reuseActions } from '../reuse.js';
import { read } from '../store.js';

const SHOWN = 24;

function outputsOf(jobs) {
  const done = [...jobs.values()].filter((j) => j.status === 'succeeded' && j.outputs?.length)
    .sort((a, b) => (b.finished_at || 0) - (a.finished_at || 0));
  return done.flatMap((job) => job.outputs.map((output, index) => ({ job, output, index }))).slice(0, SHOWN);
}

function full(output) {
  return output.signed_url || output.url;
}

function caption(job, index) {
  const p = job.parameters || {};
  const seed = job.result?.seeds?.[index] ?? p.seed;
  return [p.width && `${p.width}×${p.height}`, p.steps && `${p.steps} steps`, seed !== undefined && `seed ${seed}`]
    .filter(Boolean).join(' · ');
}

export class ResultsView {
  constructor(root, dialog) {
    this.root = root;
    this.hero = root.querySelector('.hero');
    this.grid = root.querySelector('.thumbs');
    this.dialog = dialog;
    this.shownKey = '';
  }

  render() {
    const items = outputsOf(read('jobs'));
    const key = items.map(({ job, index }) => `${job.id}/${index}`).join(',');
    if (key === this.shownKey) return;
    this.shownKey = key;
    if (!items.length) {
      this.hero.replaceChildren(h('p', { class: 'empty' }, 'Your images appear here.'));
      this.grid.replaceChildren();
      return;
    }
    const [first, ...rest] = items;
    this.hero.replaceChildren(h('figure', {},
      h('button', { type: 'button', class: 'image-button', 'aria-label': `Open image: ${first.job.parameters?.prompt || ''}`,
        onclick: () => this.open(first) },
      h('img', { src: full(first.output), alt: first.job.parameters?.prompt || 'Generated image' })),
      h('figcaption', {}, h('span', { class: 'cap-prompt' }, first.job.parameters?.prompt || ''),
        h('span', { class: 'cap-meta' }, caption(first.job, first.index)))));
    this.grid.replaceChildren(...rest.map((item) => h('li', {},
      h('button', { type: 'button', class: 'image-button', 'aria-label': `Open image: ${item.job.parameters?.prompt || ''}`,
        onclick: () => this.open(item) },
      h('img', { src: item.output.thumbnail_url, alt: item.job.parameters?.prompt || 'Generated image', loading: 'lazy' })))));
  }

  /** Show one output in the viewer dialog. */
  open({ job, output, index }) {
    const p = job.parameters || {};
    const close = () => this.dialog.close();
    this.dialog.replaceChildren(
      h('div', { class: 'viewer-head' }, h('h2', { id: 'viewer-title' }, 'Image'),
        h('button', { type: 'button', class: 'ghost', onclick: close }, 'Close')),
      h('img', { class: 'viewer-image', src: full(output), alt: p.prompt || 'Generated image' }),
      h('p', { class: 'viewer-prompt' }, p.prompt || ''),
      h('p', { class: 'cap-meta' }, caption(job, index)),
      h('div', { class: 'viewer-actions' },
        h('a', { class: 'button', href: `${output.url}${output.url.includes('?') ? '&' : '?'}download=true`,
          download: `${job.id}-${output.filename}` }, 'Download')),
      ...reuseActions({ job, seed: job.result?.seeds?.[index] ?? p.seed, image: full(output), close }));
    this.dialog.showModal();
  }
}
