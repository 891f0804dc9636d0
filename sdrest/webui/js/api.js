// The API client: JSON in and out, the CSRF header on every call that changes something, errors as ApiError.

/** An API answer that was not a success: the status, the server's message, and the field it concerns. */
export class ApiError extends Error {
  constructor(status, message, field = null, code = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
    this.code = code;
  }
}

const CSRF_COOKIE = 'sdrest_csrf';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
let unauthorizedHandler = () => {};

/** Call `handler` whenever the server answers 401 (the session ended, or there never was one). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** `method` `path` with an optional JSON `body`; the parsed JSON answer, or an ApiError. */
export async function request(method, path, body = undefined, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!SAFE.has(method)) {
    const token = csrfToken();
    if (token) headers['X-CSRF-Token'] = token;
  }
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, `the server cannot be reached (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    const error = new ApiError(response.status, detail.message || `${response.status} ${response.statusText}`,
      detail.field || null, detail.code || null);
    if (response.status === 401 && !quiet401) unauthorizedHandler(error);
    throw error;
  }
  return data;
}

export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body = {}, options) => request('POST', path, body, options);
