// The status bar: the loaded model, the device the workers compute on, the queue's depth and whether the live
// stream is connected.

import { get } from '../api.js';
import { h } from '../dom.js';
import { read, write } from '../store.js';

const CONNECTION = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Offline · reconnecting…' };
let device = null; // "CPU · AMD EPYC": /api/system's backend and first device, read once signed in

/** Fetch /api/status (public) into the store; once signed in, the device too (/api/system). */
export async function loadStatus() {
  const status = await get('/api/status');
  if (device === null && read('me')) {
    try {
      const system = await get('/api/system', { quiet401: true });
      const first = (system.devices || []).find((d) => d.backend === system.backend) || system.devices?.[0];
      device = [system.backend, first?.description].filter(Boolean).join(' · ') || '';
    } catch {
      device = null;
    }
  }
  write('status', status);
}

function baseName(path) {
  return String(path).split('/').pop().replace(/\.[^.]+$/, '');
}

/** The loaded models' names: the registry's flag first, else the workers' report (/api/status). */
function modelNames(status) {
  const registry = read('models').filter((m) => m.loaded && m.load_as).map((m) => m.name);
  if (registry.length) return registry;
  return (status?.loaded_models || []).map((m) => m.name || Object.values(m.files || {}).map(baseName)[0])
    .filter(Boolean);
}

export function renderStatus(root) {
  const status = read('status');
  const counts = status?.jobs || {};
  const models = modelNames(status);
  const connection = read('connection');
  root.replaceChildren(
    h('span', { class: 'status-item', 'data-status': 'model' },
      h('span', { class: 'status-key' }, 'Model'), models.length ? models.join(', ') : 'none loaded'),
    device ? h('span', { class: 'status-item', 'data-status': 'device' },
      h('span', { class: 'status-key' }, 'Device'), device) : null,
    h('span', { class: 'status-item', 'data-status': 'queue' },
      h('span', { class: 'status-key' }, 'Queue'), `${counts.running || 0} running · ${counts.queued || 0} waiting`),
    h('span', { class: `status-item conn conn-${connection}`, 'data-status': 'connection' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), CONNECTION[connection] || connection));
}
