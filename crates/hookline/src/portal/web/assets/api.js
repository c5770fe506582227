// The public API, called with the page's token. No private routes: what the
// portal can do, any API client holding the same token can do.

const BASE = new URL('../api/v1', document.baseURI).pathname;

let token = null;

export function setToken(t) {
  token = t;
}

/** Field names of API errors, as the portal labels them. */
const LABELS = {
  url: 'Endpoint URL',
  description: 'Description',
  filterTypes: 'Event types',
  eventTypes: 'Event types',
  channels: 'Channels',
  rateLimit: 'Rate limit',
  throttleRate: 'Rate limit',
  headers: 'Custom headers',
  since: 'Since',
  until: 'Until',
  name: 'Name',
  schemas: 'Schema',
  eventType: 'Event type',
  bucket: 'Bucket',
};

/** An API failure, in words; `fields` names each invalid input the API named. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    const fields = [];
    let message;
    if (Array.isArray(detail)) {
      for (const d of detail) {
        const loc = (d.loc || []).filter((x) => x !== 'body' && x !== 'query' && x !== 'path');
        const key = loc.find((x) => typeof x === 'string');
        const label = key ? LABELS[key] || key : null;
        const msg = d.msg || 'is invalid';
        fields.push({ field: key || null, message: msg, text: label ? `${label}: ${msg}` : msg });
      }
      message = fields.length === 1 ? `${fields[0].text}` : 'Some fields need attention';
    } else if (status === 401) {
      message = 'Your access link has expired. Ask for a new link.';
    } else if (status === 403) {
      message = typeof detail === 'string' ? `Not allowed: ${detail}` : 'Not allowed with this access link';
    } else if (status === 404) {
      message = 'Not found. It may have been deleted.';
    } else if (status === 413) {
      message = 'That is too large for the server.';
    } else if (status === 429) {
      message = 'Too many requests; try again in a moment.';
    } else if (typeof detail === 'string') {
      message = detail;
    } else {
      message = `The server answered ${status}`;
    }
    super(message);
    this.status = status;
    this.code = body && body.code;
    this.fields = fields;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

/** `api('GET', '/app')`; `query` values that are arrays are comma-joined. */
export async function api(method, path, { body, query } = {}) {
  let url = BASE + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) continue;
      q.set(k, Array.isArray(v) ? v.join(',') : String(v));
    }
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  const init = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new ApiError(0, { detail: 'Cannot reach the server. Check your connection and try again.' });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body = {}) => api('POST', path, { body });
export const patch = (path, body) => api('PATCH', path, { body });
export const put = (path, body) => api('PUT', path, { body });
export const del = (path) => api('DELETE', path);

/** Every item of a listing, following iterators, up to `max`. */
export async function getAll(path, query = {}, max = 1000) {
  const out = [];
  let iterator;
  for (;;) {
    const page = await get(path, { ...query, limit: 250, iterator });
    out.push(...page.data);
    if (page.done || !page.iterator || out.length >= max) return out;
    iterator = page.iterator;
  }
}

export const enc = encodeURIComponent;
