import { post } from './api.ts';

/** One change the server tells about (src/api/notifications.ts): the object as its GET shows it, absent when gone. */
export interface Frame {
  resource_type: string;
  resource_uri: string;
  object?: { uuid: string; [k: string]: unknown };
}

type Listener = (f: Frame) => void;
const listeners = new Set<Listener>();
const watchers = new Set<(lost: boolean) => void>();
let socket: WebSocket | null = null;
let stopped = true;
/** Bumped by every start and stop: a retry or a socket of an earlier session does nothing when it comes due. */
let generation = 0;
let retry = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let lostTimer: ReturnType<typeof setTimeout> | undefined;
let lost = false;

/** A drop that mends itself within this is not worth a word: the page only reads its lists again. */
export const GRACE_MS = 1500;
const FIRST_RETRY_MS = 500;
/** Backed off to this at most, so a page left open through a long outage still sees the API back within seconds. */
const MAX_RETRY_MS = 8000;

/** Hears about changes (no polling): the notification websocket, reconnected with a fresh async_auth when it drops. */
export function listen(f: Listener): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Told true when the page has not heard the API for GRACE_MS, and false as soon as it does again. */
export function watchConnection(f: (lost: boolean) => void): () => void {
  watchers.add(f);
  f(lost);
  return () => watchers.delete(f);
}

function tell(now: boolean): void {
  if (lost === now) return;
  lost = now;
  for (const w of watchers) w(now);
}

function down(): void {
  if (lost || lostTimer !== undefined) return;
  lostTimer = setTimeout(() => {
    lostTimer = undefined;
    tell(true);
  }, GRACE_MS);
}

function up(): void {
  clearTimeout(lostTimer);
  lostTimer = undefined;
  tell(false);
}

export function startNotifications(): void {
  if (!stopped) return;
  stopped = false;
  retry = 0;
  void open(++generation);
}

export function stopNotifications(): void {
  stopped = true;
  generation++;
  clearTimeout(retryTimer);
  retryTimer = undefined;
  const s = socket;
  socket = null;
  s?.close();
  up(); // signed out: there is no connection to miss
}

// The browser says the network is back: try now rather than at the end of the back-off.
if (typeof addEventListener === 'function')
  addEventListener('online', () => {
    if (stopped || retryTimer === undefined) return;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    void open(generation);
  });

async function open(g: number): Promise<void> {
  if (stopped || g !== generation) return;
  try {
    await post('/accounts/action/?do=authenticate_asynchronous');
  } catch {
    // A 401 has already signed the page out (and stopped this); anything else is an API the page cannot reach.
    return again(g);
  }
  if (stopped || g !== generation) return;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websocket`);
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    retry = 0;
    document.body.dataset.live = 'yes';
    up();
    // Whatever changed while no socket was open was not heard: lists read themselves again.
    for (const l of listeners) l({ resource_type: '*', resource_uri: '' });
  };
  ws.onmessage = (m) => {
    if (socket !== ws) return;
    let frame: Frame;
    try {
      frame = JSON.parse(String(m.data)) as Frame;
    } catch {
      return;
    }
    for (const l of listeners) l(frame);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    document.body.dataset.live = 'no';
    again(g);
  };
}

/** The next try, later each time (with a little jitter, so many open pages do not all knock at once). */
function again(g: number): void {
  if (stopped || g !== generation) return;
  down();
  const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** retry) * (0.8 + Math.random() * 0.4);
  retry = Math.min(retry + 1, 10);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryTimer = undefined;
    void open(g);
  }, wait);
}
