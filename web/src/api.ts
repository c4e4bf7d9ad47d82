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

export const get = <T>(path: string) => call<T>('GET', path);
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
