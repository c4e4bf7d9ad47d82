import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Services } from '../services.ts';
import { ServerCommands } from '../commands/servers.ts';
import { ApiError, ERROR_CODE_HEADER, errors } from '../errors.ts';
import { vncResponse, WANTS_HISTORY } from '../domain/console-protocol.ts';
import { parseCookies } from './auth.ts';

/** /websocket/servers/{uuid}/serial and /websocket/servers/{uuid}/vnc: the web console's bridges. */
const PATH = /^\/websocket\/servers\/([0-9a-fA-F-]{36})\/(serial|vnc)$/;
const HANDSHAKE_MS = 10_000;

function refuse(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify(err.errors);
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[err.statusCode] ?? 'Error';
  const head = `HTTP/1.1 ${err.statusCode} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${ERROR_CODE_HEADER}: ${err.code}`;
  socket.end(`${head}\r\nConnection: close\r\n\r\n${body}`);
}

/** Reads a TCP stream by exact lengths or up to a marker, keeping what comes after for the bridge. */
class Bytes {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended = false;

  constructor(private readonly sock: net.Socket) {
    sock.on('data', this.onData);
    sock.once('close', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  private readonly onData = (c: Buffer) => {
    this.buf = Buffer.concat([this.buf, c]);
    this.waiter?.();
  };

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.ended) throw new Error('the console closed the connection');
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
  }

  async read(n: number): Promise<Buffer> {
    await this.until(() => this.buf.length >= n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Everything up to and including `marker`, or the text so far if `fails` shows up first. */
  async readUntil(marker: string, fails: RegExp): Promise<{ ok: boolean; text: string }> {
    let at = -1;
    await this.until(() => (at = this.buf.indexOf(marker)) >= 0 || fails.test(this.buf.toString('latin1')) || this.buf.length > 64 * 1024);
    if (at < 0) return { ok: false, text: this.buf.toString('latin1') };
    const text = this.buf.subarray(0, at + marker.length).toString('latin1');
    this.buf = this.buf.subarray(at + marker.length);
    return { ok: true, text };
  }

  /** Stops reading for itself: what it still holds goes first, then the socket's bytes go straight to `to`. */
  handOver(to: (b: Buffer) => void): void {
    this.sock.off('data', this.onData);
    if (this.buf.length) to(this.buf);
    this.buf = Buffer.alloc(0);
    this.sock.on('data', to);
  }
}

function connect(url: string): Promise<net.Socket> {
  const u = new URL(url.replace(/^[a-z]+:/, 'tcp:'));
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Messages from the browser, read by length (the RFB handshake the bridge plays towards noVNC). */
class Messages {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private readonly onMessage = (d: RawData) => {
    this.buf = Buffer.concat([this.buf, toBuffer(d)]);
    this.waiter?.();
  };
  constructor(private readonly ws: WebSocket) {
    ws.on('message', this.onMessage);
  }
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ws.readyState !== this.ws.OPEN) throw new Error('the browser went away');
      await new Promise<void>((r) => {
        this.waiter = r;
        this.ws.once('close', () => r());
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  handOver(to: (b: Buffer) => void): void {
    this.ws.off('message', this.onMessage);
    if (this.buf.length) to(this.buf);
    this.ws.on('message', (d: RawData) => to(toBuffer(d)));
  }
}

/** An Origin's host, or null for "null" (sandboxed frames) and anything else that is not a URL. */
function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

const toBuffer = (d: RawData): Buffer => (Array.isArray(d) ? Buffer.concat(d) : Buffer.isBuffer(d) ? d : Buffer.from(d));

/**
 * The web console's websockets. The browser's cookie session says who is calling (401 without one); the server is
 * opened exactly as `POST /servers/{uuid}/action/?do=open_console|open_vnc` would for that caller, so a server it
 * may not see answers 404 and one it may see but not open answers 403. The bridge then answers the console's
 * password prompt (serial) or VNC authentication (VNC) itself, so the password never reaches the page.
 */
export function consoleBridge(app: FastifyInstance, svc: Services): (req: IncomingMessage, socket: Duplex, head: Buffer, path: string) => boolean {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  app.addHook('onClose', async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
  const servers = new ServerCommands(svc);
  return (req, socket, head, path) => {
    const m = PATH.exec(path);
    if (!m) return false;
    const [, uuid, kind] = m as unknown as [string, string, 'serial' | 'vnc'];
    void (async () => {
      // Websockets are not bound by the same-origin rule: a page elsewhere must not ride on this browser's cookie.
      const origin = req.headers.origin;
      if (origin && hostOf(origin) !== req.headers.host) throw errors.permission('Cross-origin console connections are refused');
      const sid = parseCookies(req.headers.cookie).sessionid;
      const session = sid ? await svc.store.users.resolveToken(sid, 'session') : undefined;
      if (!session) throw errors.unauthorized();
      const actor = { user: session.user };
      const opened = (await servers.action(actor, uuid, kind === 'serial' ? 'open_console' : 'open_vnc', {}, {})) as { console_url?: string; vnc_url?: string };
      const password = (await svc.store.servers.get(uuid))?.doc.vnc_password ?? '';
      const upstream = await connect(String(opened.console_url ?? opened.vnc_url));
      upstream.on('error', () => {});
      upstream.setTimeout(HANDSHAKE_MS, () => upstream.destroy());
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => {});
        // Also during the handshake: a page that never answers is let go when the console's idle timeout ends it.
        upstream.once('close', () => ws.readyState === ws.OPEN && ws.close(1000, 'The console has ended'));
        const run = kind === 'serial' ? bridgeSerial(ws, upstream, password) : bridgeVnc(ws, upstream, password);
        run.catch((e: Error) => {
          upstream.destroy();
          if (ws.readyState === ws.OPEN) ws.close(4000, e.message.slice(0, 120));
        });
      });
    })().catch((e: unknown) => {
      if (e instanceof ApiError) return refuse(socket, e);
      svc.log.warn({ err: e }, 'console bridge');
      refuse(socket, errors.backend());
    });
    return true;
  };
}

function join(ws: WebSocket, upstream: net.Socket, fromUpstream: Bytes, fromBrowser: Messages | null): void {
  upstream.setTimeout(0);
  fromUpstream.handOver((b) => ws.readyState === ws.OPEN && ws.send(b));
  const toUpstream = (b: Buffer) => upstream.writable && upstream.write(b);
  if (fromBrowser) fromBrowser.handOver(toUpstream);
  else ws.on('message', (d: RawData) => toUpstream(toBuffer(d)));
  // The console ends (the server stopped, or another client took over): so does the page's (closed by the upgrade's
  // own listener); the page leaving ends the console connection.
  ws.on('close', () => upstream.destroy());
}

/** csconsole: answers "Password:" with the server's vnc_password, then joins the page to ttyS0. */
async function bridgeSerial(ws: WebSocket, upstream: net.Socket, password: string): Promise<void> {
  const bytes = new Bytes(upstream);
  const prompt = await bytes.readUntil('Password: ', /another client/i);
  if (!prompt.ok) throw new Error(prompt.text.trim() || 'The console did not ask for its password');
  upstream.write(`${password}${WANTS_HISTORY}\r\n`); // and show what the guest already wrote
  const joined = await bytes.readUntil('Connected to the serial console.\r\n', /wrong password|not available/i);
  if (!joined.ok) throw new Error(joined.text.trim());
  join(ws, upstream, bytes, null);
}

/**
 * VNC: the bridge authenticates to the server's display with its password (RFB 3.8, VNC authentication), then
 * plays an RFB server to noVNC offering no authentication, and from ServerInit on passes every byte through.
 */
async function bridgeVnc(ws: WebSocket, upstream: net.Socket, password: string): Promise<void> {
  const up = new Bytes(upstream);
  const browser = new Messages(ws);
  const version = (await up.read(12)).toString('latin1');
  if (!/^RFB 003\.00[3-8]\n$/.test(version)) throw new Error('The display does not speak VNC');
  upstream.write('RFB 003.008\n');
  const count = (await up.read(1))[0]!;
  if (count === 0) throw new Error('The display refused the connection');
  const types = [...(await up.read(count))];
  if (types.includes(2)) {
    upstream.write(Buffer.from([2]));
    upstream.write(vncResponse(password, await up.read(16)));
  } else if (types.includes(1)) upstream.write(Buffer.from([1]));
  else throw new Error('The display offers no authentication the bridge speaks');
  if ((await up.read(4)).readUInt32BE(0) !== 0) throw new Error('The display refused the VNC password');

  ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
  const theirs = (await browser.read(12)).toString('latin1');
  if (!/^RFB 003\.00[78]\n$/.test(theirs)) throw new Error('The page must speak RFB 3.7 or 3.8');
  ws.send(Buffer.from([1, 1])); // one security type: None
  if ((await browser.read(1))[0] !== 1) throw new Error('The page chose a security type not offered');
  if (theirs === 'RFB 003.008\n') ws.send(Buffer.from([0, 0, 0, 0])); // SecurityResult OK (3.8 only)
  join(ws, upstream, up, browser);
}
