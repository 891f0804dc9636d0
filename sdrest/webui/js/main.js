// The app: signs in (or not), loads the schema, models and queue, follows the event stream and routes views.

import { get, onUnauthorized, post } from './api.js';
import { EventStream } from './events.js';
import { setupReuse } from './reuse.js';
import { mountPresets } from './presets.js';
import { setupShortcuts } from './shortcuts.js';
import { changed, read, subscribe, updateJob, write } from './store.js';
import { setupTheme } from './theme.js';
import { AccountView, whoAmI } from './views/account.js';
import { GalleryView } from './views/gallery.js';
import { GenerateView } from './views/generate.js';
import { ModelsView, loadModels } from './views/models.js';
import { QueueView } from './views/queue.js';
import { ResultsView } from './views/results.js';
import { loadStatus, renderStatus } from './views/statusbar.js';

const $ = (selector) => document.querySelector(selector);
const VIEWS = ['generate', 'models', 'gallery'];
let stream = null;
let statusTimer = null;

const generate = new GenerateView($('#generate-form'), { onSheet: (open) => setSheet(open) });
const queue = new QueueView($('#queue'), { onCancel: cancel });
const results = new ResultsView($('#results'), $('#viewer'));
const models = new ModelsView($('#view-models'), { onChanged: refreshStatus });
const gallery = new GalleryView($('#view-gallery'), $('#gallery-viewer'), $('#compare'));
const account = new AccountView($('#account'), $('#view-login'), { onLogin: start, onLogout: stop,
  onLeaving: () => stream?.stop() });

function setSheet(open) {
  const sheet = $('#params');
  sheet.classList.toggle('open', open);
  $('#params-toggle').setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('sheet-open', open);
  if (open) sheet.querySelector('input, select, textarea, button')?.focus();
  else $('#params-toggle').focus({ preventScroll: true });
}

function showView() {
  const signedIn = Boolean(read('me'));
  const name = VIEWS.find((v) => location.hash === `#/${v}`) || 'generate';
  for (const view of VIEWS) $(`#view-${view}`).hidden = !signedIn || view !== name;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  $('#nav').hidden = !signedIn;
  if (signedIn && name === 'gallery') gallery.show();
}

function refreshStatus() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => loadStatus().catch(() => {}), 300);
}

/** Read the queue again (after a reload, a reconnect or on a second device): the server's state is the truth. */
async function resync() {
  const answer = await get('/api/queue/status?limit=1000');
  const jobs = new Map();
  for (const job of [...answer.recent].reverse().concat(answer.jobs)) jobs.set(job.id, job);
  for (const [id, job] of read('jobs')) {  // a job whose progress arrived before the answer keeps it
    if (jobs.has(id) && jobs.get(id).status === 'running' && job.status === 'running') {
      jobs.set(id, { ...jobs.get(id), step: job.step, steps: job.steps, progress: job.progress,
        eta_seconds: job.eta_seconds, preview: job.preview });
    }
  }
  write('jobs', jobs);
  refreshStatus();
}

async function fetchJob(id) {
  try {
    updateJob(id, await get(`/api/queue/job/${encodeURIComponent(id)}`));
  } catch {
    // another user's job (404) or a job already gone: nothing to show
  }
}

function onEvent(type, data) {
  const id = data.job_id;
  const known = id && read('jobs').has(id);
  switch (type) {
    case 'hello':
      resync().catch(() => {});
      break;
    case 'state':
      if (known) updateJob(id, { status: data.status, error: data.error ?? read('jobs').get(id).error,
        queue_position: data.queue_position ?? null });
      if (!known || ['succeeded', 'failed', 'cancelled'].includes(data.status)) fetchJob(id);
      refreshStatus();
      break;
    case 'progress':
      if (known) updateJob(id, { status: 'running', step: data.step, steps: data.steps, progress: data.progress,
        eta_seconds: data.eta_seconds, phase: data.phase });
      break;
    case 'preview':
      if (known) updateJob(id, { preview: data.image });
      break;
    case 'deleted':
      if (read('jobs').delete(id)) changed('jobs');
      break;
    case 'counts':
      refreshStatus();
      break;
    case 'model':
      loadModels().catch(() => {});
      refreshStatus();
      break;
    default:
      break;
  }
}

async function cancel(id) {
  try {
    const answer = await post('/api/queue/cancel', { job_id: id });
    updateJob(id, { status: answer.status === 'cancelled' ? 'cancelled' : read('jobs').get(id)?.status });
  } catch (error) {
    $('#form-error').textContent = `Cancel: ${error.message}`;
    $('#form-error').hidden = false;
  }
}

/** The current job: the caller's running job, else their first queued one. */
function currentJob() {
  const me = read('me');
  const mine = [...read('jobs').values()].filter((j) => !j.owner || j.owner === me?.username);
  return mine.find((j) => j.status === 'running') || mine.find((j) => j.status === 'queued');
}

async function start(me) {
  write('me', me);
  account.render();
  showView();
  const [schema] = await Promise.all([get('/api/parameters'), loadModels(), loadStatus()]);
  write('schema', schema.parameters);
  generate.build();
  mountPresets($('#presets-slot'), $('#generate-form'));
  await resync();
  stream = new EventStream('/api/events', onEvent, (connection) => write('connection', connection));
  stream.start();
}

function stop() {
  if (stream) stream.stop();
  stream = null;
  write('jobs', new Map());
  write('connection', 'connecting');
  account.render();
  showView();
  account.showLogin();
}

subscribe('jobs', () => { queue.render(); results.render(); });
subscribe('models', () => { models.render(); renderStatus($('#statusbar')); });
subscribe('status', () => renderStatus($('#statusbar')));
subscribe('connection', () => renderStatus($('#statusbar')));
subscribe('me', () => models.render());
window.addEventListener('hashchange', showView);
$('#params-toggle').addEventListener('click', () => setSheet(!$('#params').classList.contains('open')));
$('#sheet-backdrop').addEventListener('click', () => setSheet(false));
setupTheme($('#theme'));
setupReuse($('#generate-form'));
setupShortcuts({
  enabled: () => Boolean(read('me')) && !$('#view-generate').hidden,
  generate: () => $('#generate-form').requestSubmit(),
  cancelCurrent: () => {
    const job = currentJob();
    if (job) cancel(job.id);
  },
});
onUnauthorized(() => {
  if (read('me')) {
    write('me', null);
    if (stream) stream.stop();
    account.render();
    showView();
    account.showLogin('Your session ended: log in again.');
  }
});

async function boot() {
  renderStatus($('#statusbar'));
  await loadStatus();
  const auth = read('status').auth;
  const me = await whoAmI(auth);
  if (me) await start(me);
  else {
    showView();
    account.showLogin(auth && !auth.login ? `This server uses auth ${auth.mode}: the web UI needs a log-in mode `
      + '(jwt, pam, unix or optional).' : '');
  }
}

boot().catch((error) => {
  $('#boot-error').textContent = `The UI could not start: ${error.message}`;
  $('#boot-error').hidden = false;
});
changed('connection');
