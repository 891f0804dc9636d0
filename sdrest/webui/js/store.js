// The state store: one object of named slices; views subscribe to the slices they draw.

const state = {
  me: null, // the signed-in principal (/api/auth/me), or null
  schema: null, // /api/parameters
  models: [], // /api/models entries
  status: null, // /api/status
  jobs: new Map(), // id -> job (own jobs, or every job for an admin), newest last
  connection: 'connecting', // the event stream: connecting, live, reconnecting
};
const listeners = new Map();

/** The current value of slice `key`. */
export function read(key) {
  return state[key];
}

/** Replace slice `key` and tell its subscribers. */
export function write(key, value) {
  state[key] = value;
  changed(key);
}

/** Tell the subscribers of `key` that it changed in place (a Map updated, say). */
export function changed(key) {
  for (const listener of listeners.get(key) || []) listener(state[key]);
}

/** Call `listener(value)` whenever slice `key` changes; returns a function that stops it. */
export function subscribe(key, listener) {
  if (!listeners.has(key)) listeners.set(key, new Set());
  listeners.get(key).add(listener);
  return () => listeners.get(key).delete(listener);
}

/** Merge `fields` into the job `id` (a new job when unknown) and tell the subscribers of `jobs`. */
export function updateJob(id, fields) {
  const jobs = state.jobs;
  jobs.set(id, { ...(jobs.get(id) || { id }), ...fields });
  changed('jobs');
}
