import { post } from './api.ts';

/** One change the server tells about (src/api/notifications.ts): the object as its GET shows it, absent when gone. */
export interface Frame {
  resource_type: string;
  resource_uri: string;
  object?: { uuid: string; [k: string]: unknown };
}

type Listener = (f: Frame) => void;
const listeners = new Set<Listener>();
let socket: WebSocket | null = null;
let stopped = true;
let retry = 0;

/** Hears about changes (no polling): the notification websocket, reconnected with a fresh async_auth when it drops. */
export function listen(f: Listener): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function startNotifications(): void {
  if (!stopped) return;
  stopped = false;
  void open();
}

export function stopNotifications(): void {
  stopped = true;
  socket?.close();
  socket = null;
}

async function open(): Promise<void> {
  if (stopped) return;
  try {
    await post('/accounts/action/?do=authenticate_asynchronous');
  } catch {
    return again();
  }
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websocket`);
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    document.body.dataset.live = 'yes';
    // Whatever changed while no socket was open was not heard: lists read themselves again.
    for (const l of listeners) l({ resource_type: '*', resource_uri: '' });
  };
  ws.onmessage = (m) => {
    let frame: Frame;
    try {
      frame = JSON.parse(String(m.data)) as Frame;
    } catch {
      return;
    }
    for (const l of listeners) l(frame);
  };
  ws.onclose = () => {
    document.body.dataset.live = 'no';
    if (socket === ws) again();
  };
}

function again(): void {
  if (stopped) return;
  retry = Math.min(retry + 1, 6);
  setTimeout(() => void open(), 500 * 2 ** retry);
}
