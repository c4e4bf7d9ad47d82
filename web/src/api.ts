import { asErrors, type ApiErrorItem } from './errors.ts';
import type { UploadIo } from './upload.ts';

export const API = '/api/2.0';

/** A failed API call: its status and the API's error array. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiErrorItem[],
  ) {
    super(errors.map((e) => e.error_message).join('; '));
  }
}

function cookie(name: string): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/**
 * Every call rides on the cookie session. X-Requested-With tells the server a script is asking, so a 401 never
 * brings up the browser's own Basic-auth dialog; unsafe methods carry the session's CSRF token as the API requires.
 */
export function headers(method: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json', ...extra };
  if (!['GET', 'HEAD'].includes(method)) {
    const csrf = cookie('csrftoken');
    if (csrf) h['x-csrftoken'] = csrf;
  }
  return h;
}

/** Called when an answer says the session is over (401), so the page shows the sign-in form again. */
let onSignedOut: () => void = () => {};
export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path.startsWith('/') && !path.startsWith(API) ? `${API}${path}` : path, {
    method,
    credentials: 'same-origin',
    headers: headers(method, body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  if (!res.ok) {
    if (res.status === 401 && !path.includes('do=login')) onSignedOut();
    throw new ApiFailure(res.status, asErrors(res.status, parsed));
  }
  return parsed as T;
}

/** Answers asked for before the page that shows them exists: each is taken once, by the first get of its path. */
const early = new Map<string, { answer: Promise<unknown>; at: number }>();
/** Older than this, an early answer is not worth showing: the page asks again. */
const EARLY_MS = 5000;

/** Starts a GET now, for a page about to ask for it; a failed one is simply asked again when the page does. */
export function prefetch(path: string): void {
  const answer = call('GET', path);
  answer.catch(() => early.delete(path));
  early.set(path, { answer, at: Date.now() });
}

export function get<T>(path: string): Promise<T> {
  const e = early.get(path);
  if (!e) return call<T>('GET', path);
  early.delete(path);
  if (Date.now() - e.at > EARLY_MS) return call<T>('GET', path);
  return (e.answer as Promise<T>).catch(() => call<T>('GET', path));
}
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => call<T>('PUT', path, body);
export const del = <T>(path: string) => call<T>('DELETE', path);

export interface List<T> {
  meta: { limit: number; offset: number; total_count: number };
  objects: T[];
}

/** Chunks go through XMLHttpRequest: fetch cannot report how much of a body was sent. */
export const uploadIo: UploadIo = {
  async has(url) {
    const res = await fetch(url, { credentials: 'same-origin', headers: headers('GET') });
    return res.status === 200;
  },
  send(url, bytes, onBytes) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('POST', url);
      for (const [k, v] of Object.entries(headers('POST', { 'content-type': 'application/octet-stream' }))) x.setRequestHeader(k, v);
      x.upload.onprogress = (e) => onBytes(e.loaded);
      x.onload = () => {
        if (x.status >= 200 && x.status < 300) return resolve();
        let body: unknown = null;
        try {
          body = JSON.parse(x.responseText);
        } catch {
          // not JSON
        }
        reject(new ApiFailure(x.status, asErrors(x.status, body)));
      };
      x.onerror = () => reject(new Error('The upload was cut off'));
      x.send(bytes);
    });
  },
};
