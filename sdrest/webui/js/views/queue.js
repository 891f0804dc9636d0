// The Queue region: the caller's queued and running jobs (an admin: everyone's) with live progress, step
// previews, ETA and a cancel button each (a running batch also "Skip rest": the image being sampled finishes,
// the others never start); "Clear mine" cancels one's queued jobs; the last few finished ones stay listed.

import { post } from '../api.js';
import { h, duration } from '../dom.js';
import { read, updateJob } from '../store.js';

const ACTIVE = new Set(['queued', 'running']);
const FINISHED_SHOWN = 4;
const STATUS_TEXT = { queued: 'Queued', running: 'Running', succeeded: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

function promptOf(job) {
  const prompt = job.parameters?.prompt;
  return prompt ? prompt : `${job.kind || 'job'} ${job.id.slice(0, 6)}`;
}

/** The jobs the queue lists: the active ones in queue order, then the newest finished ones. */
export function queuedJobs(jobs) {
  const all = [...jobs.values()];
  const active = all.filter((j) => ACTIVE.has(j.status))
    .sort((a, b) => (a.status === 'running' ? -1 : 0) - (b.status === 'running' ? -1 : 0)
      || (a.created_at || 0) - (b.created_at || 0));
  const finished = all.filter((j) => !ACTIVE.has(j.status))
    .sort((a, b) => (b.finished_at || b.created_at || 0) - (a.finished_at || a.created_at || 0))
    .slice(0, FINISHED_SHOWN);
  return [...active, ...finished];
}

export class QueueView {
  constructor(root, { onCancel }) {
    this.root = root;
    this.list = root.querySelector('ol');
    this.empty = root.querySelector('.empty');
    this.onCancel = onCancel;
    this.items = new Map();
    this.clearButton = h('button', { type: 'button', class: 'ghost small', title: 'Cancel all your queued jobs',
      onclick: () => this.clearMine() }, 'Clear mine');
    this.notice = h('p', { class: 'notice', role: 'alert', hidden: true });
    const title = root.querySelector('h2');
    const head = h('div', { class: 'queue-head' });
    title.before(head);
    head.append(title, this.clearButton);
    this.list.before(this.notice);
  }

  async clearMine() {
    this.notice.hidden = true;
    try {
      const answer = await post('/api/queue/clear', { mine: true });
      for (const id of answer.job_ids || []) {
        if (read('jobs').has(id)) updateJob(id, { status: 'cancelled', error: 'queue cleared' });
      }
    } catch (error) {
      this.notice.textContent = `Clear: ${error.message}`;
      this.notice.hidden = false;
    }
  }

  /** Let the running job `job` finish the image it samples and start no other of its batch. */
  async skipRest(job) {
    this.notice.hidden = true;
    try {
      await post('/api/queue/cancel', { job_id: job.id, mode: 'new_latents' });
      updateJob(job.id, { skipping: true });
    } catch (error) {
      this.notice.textContent = `Skip: ${error.message}`;
      this.notice.hidden = false;
    }
  }

  /** Draw the jobs, updating existing items in place (so focus and hover survive the updates). */
  render() {
    const jobs = queuedJobs(read('jobs'));
    const me = read('me');
    const keep = new Set(jobs.map((j) => j.id));
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    jobs.forEach((job, index) => {
      let item = this.items.get(job.id);
      if (!item) {
        item = this.create(job);
        this.items.set(job.id, item);
      }
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
      this.update(item, job, me);
    });
    this.empty.hidden = jobs.length > 0;
    this.clearButton.hidden = !jobs.some((j) => j.status === 'queued' && (!j.owner || !me || j.owner === me.username));
  }

  create(job) {
    const prompt = promptOf(job);
    const cancel = h('button', { type: 'button', class: 'ghost danger', 'aria-label': `Cancel job: ${prompt}`,
      onclick: () => this.onCancel(job.id) }, 'Cancel');
    const skip = h('button', { type: 'button', class: 'ghost skip-rest', 'aria-label': `Skip the rest of the batch: ${prompt}`,
      title: 'Finish the image being made, skip the rest of the batch', onclick: () => this.skipRest(job) }, 'Skip rest');
    return h('li', { class: 'job', 'data-job-id': job.id },
      h('div', { class: 'job-thumb' }, h('img', { alt: '', hidden: true })),
      h('div', { class: 'job-main' },
        h('p', { class: 'job-prompt', title: prompt }, prompt),
        h('p', { class: 'job-meta' }),
        h('div', { class: 'bar', role: 'progressbar', 'aria-label': `Progress: ${prompt}`, 'aria-valuemin': 0,
          'aria-valuemax': 100, 'aria-valuenow': 0 }, h('span', { class: 'bar-fill' })),
        h('p', { class: 'job-progress' })),
      h('div', { class: 'job-actions' }, skip, cancel));
  }

  update(item, job, me) {
    const p = job.parameters || {};
    const percent = Math.round(100 * (job.status === 'succeeded' ? 1 : job.progress || 0));
    item.className = `job job-${job.status}`;
    const meta = [STATUS_TEXT[job.status] || job.status];
    if (p.width && p.height) meta.push(`${p.width}×${p.height}`);
    if (job.owner && me?.role === 'admin' && job.owner !== me.username) meta.push(job.owner);
    item.querySelector('.job-meta').textContent = meta.join(' · ');
    const bar = item.querySelector('.bar');
    bar.setAttribute('aria-valuenow', String(percent));
    bar.setAttribute('aria-valuetext', job.steps ? `${percent} %, step ${job.step || 0} of ${job.steps}` : `${percent} %`);
    item.querySelector('.bar-fill').style.width = `${percent}%`;
    let line = '';
    if (job.status === 'running') {
      line = job.steps ? `Step ${job.step || 0}/${job.steps} · ${percent} %` : 'Starting…';
      if (job.steps && (job.step || 0) >= job.steps) line += ' · decoding…';
      else if (job.eta_seconds !== undefined && job.steps) line += ` · ETA ${duration(job.eta_seconds)}`;
      if (job.skipping) line += ' · skipping the rest';
    } else if (job.status === 'queued') {
      line = job.queue_position ? `Position ${job.queue_position} in the queue` : 'Waiting';
    } else if (job.status === 'failed') {
      line = job.error || 'Failed';
    } else if (job.status === 'succeeded') {
      line = `${percent} % · ${job.outputs?.length || 0} image(s)`;
      if (job.result?.skipped) line += ` · ${job.result.skipped} skipped`;
    } else line = 'Cancelled';
    item.querySelector('.job-progress').textContent = line;
    const img = item.querySelector('.job-thumb img');
    const picture = job.status === 'succeeded' && job.outputs?.[0] ? job.outputs[0].thumbnail_url : job.preview;
    if (picture && img.getAttribute('src') !== picture) img.src = picture;
    img.hidden = !picture;
    const [skip, cancel] = item.querySelectorAll('.job-actions button');
    const mine = !job.owner || !me || job.owner === me.username || me.role === 'admin';
    cancel.hidden = !ACTIVE.has(job.status) || !mine;
    skip.hidden = job.status !== 'running' || !mine || !((p.batch_count || 1) > 1);
    skip.disabled = Boolean(job.skipping);
  }
}
