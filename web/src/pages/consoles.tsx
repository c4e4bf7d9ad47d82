import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import RFB from '@novnc/novnc';
import { get } from '../api.ts';
import type { Server } from './servers.tsx';

const wsUrl = (path: string) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

function useServerName(uuid: string): string {
  const [name, setName] = useState('');
  useEffect(() => {
    get<Server>(`/servers/${uuid}/`).then(
      (s) => setName(s.name),
      () => {},
    );
  }, [uuid]);
  return name;
}

/**
 * The serial console in xterm.js over the bridge at /websocket/servers/{uuid}/serial, which checks the session and
 * types the console's password itself. Screen-reader mode keeps the terminal's text in the page, readable.
 */
export function ConsolePage({ uuid }: { uuid: string }) {
  const box = useRef<HTMLDivElement>(null);
  const name = useServerName(uuid);
  const [status, setStatus] = useState('Connecting to the serial console…');
  useEffect(() => {
    const term = new Terminal({ screenReaderMode: true, convertEol: false, cursorBlink: true, rows: 24, cols: 100, fontSize: 14 });
    term.open(box.current!);
    const ws = new WebSocket(wsUrl(`/websocket/servers/${uuid}/serial`));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      setStatus('Connected to the serial console.');
      term.focus();
    };
    ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data as ArrayBuffer));
    ws.onclose = (e) => setStatus(e.code === 1000 || !e.reason ? 'The console has ended.' : `The console has ended: ${e.reason}`);
    const typed = term.onData((data) => ws.readyState === WebSocket.OPEN && ws.send(new TextEncoder().encode(data)));
    return () => {
      typed.dispose();
      ws.close();
      term.dispose();
    };
  }, [uuid]);
  return (
    <section aria-labelledby="console-h">
      <h1 id="console-h">Serial console{name ? ` of ${name}` : ''}</h1>
      <p>
        <a href={`#/servers/${uuid}`}>Back to the server</a>
      </p>
      <p role="status" data-testid="console-status">
        {status}
      </p>
      <div class="terminal" ref={box} aria-label="Serial console" />
    </section>
  );
}

/** The VNC display in noVNC over /websocket/servers/{uuid}/vnc: the bridge answers the VNC password itself. */
export function VncPage({ uuid }: { uuid: string }) {
  const box = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const name = useServerName(uuid);
  const [status, setStatus] = useState('Connecting to the display…');
  useEffect(() => {
    const r = new RFB(box.current!, wsUrl(`/websocket/servers/${uuid}/vnc`), { shared: true });
    r.scaleViewport = true;
    r.addEventListener('connect', () => setStatus('Connected to the display.'));
    r.addEventListener('disconnect', (e) => {
      const clean = (e as CustomEvent<{ clean: boolean }>).detail.clean;
      setStatus(clean ? 'The display has ended.' : 'The display connection was lost.');
    });
    r.addEventListener('securityfailure', () => setStatus('The display refused the connection.'));
    rfb.current = r;
    return () => {
      r.disconnect();
      rfb.current = null;
    };
  }, [uuid]);
  return (
    <section aria-labelledby="vnc-h">
      <h1 id="vnc-h">VNC{name ? ` of ${name}` : ''}</h1>
      <p>
        <a href={`#/servers/${uuid}`}>Back to the server</a>{' '}
        <button type="button" onClick={() => rfb.current?.sendCtrlAltDel()}>
          Ctrl-Alt-Del
        </button>
      </p>
      <p role="status" data-testid="vnc-status">
        {status}
      </p>
      <div class="vnc" ref={box} aria-label="VNC display" />
    </section>
  );
}
