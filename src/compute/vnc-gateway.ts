import crypto from 'node:crypto';
import net from 'node:net';
import { GuessThrottle } from '../domain/guess-throttle.ts';
import { vncResponse } from '../domain/console-protocol.ts';
import { AUTH_TIMEOUT_MS, sourceOf } from './console.ts';

const MAX_UNAUTHENTICATED = 16;

/**
 * The endpoint behind vnc://HOST:PORT. It authenticates the client itself (RFB's VNC authentication, with the
 * server's vnc_password), so that wrong passwords can be slowed down per source and a client that never answers is
 * dropped, which neither QEMU's VNC server nor any other can do; then it logs in to the driver's display, which
 * listens on loopback only, and joins the two. Every client shares the display, as on CloudSigma.
 */
export class VncGateway {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private unauthenticated = 0;

  constructor(
    private readonly bindHost: string,
    private readonly upstream: { host: string; port: number },
    private readonly password: () => Promise<string>,
    private readonly throttle: GuessThrottle = new GuessThrottle(),
  ) {}

  async open(): Promise<number> {
    if (!this.server) {
      const server = net.createServer((sock) => void this.session(sock).catch(() => sock.destroy()));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, this.bindHost, () => resolve());
      });
      this.server = server;
    }
    return (this.server.address() as net.AddressInfo).port;
  }

  private async session(sock: net.Socket): Promise<void> {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    sock.setNoDelay(true);
    if (this.unauthenticated >= MAX_UNAUTHENTICATED) return void sock.destroy();
    this.unauthenticated++;
    let counted = true;
    const done = () => {
      if (counted) this.unauthenticated--;
      counted = false;
    };
    sock.once('close', done);
    const timer = setTimeout(() => sock.destroy(), AUTH_TIMEOUT_MS);
    sock.once('close', () => clearTimeout(timer));
    const r = new Reader(sock);
    sock.write('RFB 003.008\n');
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec((await r.read(12)).toString('latin1'));
    if (!m) return void sock.destroy();
    const minor = Number(m[1]) > 3 ? 8 : Math.min(Number(m[2]), 8);
    if (minor >= 7) {
      sock.write(Buffer.from([1, 2])); // one security type: VNC authentication
      if ((await r.read(1))[0] !== 2) return void sock.end(minor >= 8 ? failure('Only VNC authentication (type 2) is offered') : u32(1));
    } else sock.write(u32(2));
    const challenge = crypto.randomBytes(16);
    sock.write(challenge);
    const answer = await r.read(16);
    const source = sourceOf(sock);
    const turn = this.throttle.admit(source, Date.now());
    if (!turn.ok) return void sock.end(minor >= 8 ? failure(`Too many wrong passwords; try again in ${Math.ceil(turn.retryAfterMs / 1000)} s`) : u32(1));
    if (turn.waitMs) await new Promise((res) => setTimeout(res, turn.waitMs));
    if (sock.destroyed) return;
    const password = await this.password();
    if (!crypto.timingSafeEqual(answer, vncResponse(password, challenge))) {
      this.throttle.fail(source, Date.now());
      return void sock.end(minor >= 8 ? failure('Authentication failed: wrong password') : u32(1));
    }
    this.throttle.succeed(source);
    clearTimeout(timer);
    done();
    const up = await this.login(password).catch(() => null);
    if (!up) return void sock.end(minor >= 8 ? failure('The display is not available') : u32(1));
    this.sockets.add(up);
    up.on('close', () => sock.destroy());
    sock.on('close', () => up.destroy());
    sock.write(u32(0));
    const rest = r.detach();
    if (rest.length) up.write(rest);
    sock.pipe(up);
    up.pipe(sock);
  }

  /** Logs in to the driver's display as an RFB 3.8 client; resolves with the socket ready for ClientInit. */
  private async login(password: string): Promise<net.Socket> {
    const up = net.connect(this.upstream.port, this.upstream.host);
    up.on('error', () => {});
    up.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      up.once('connect', () => resolve());
      up.once('error', reject);
    });
    const r = new Reader(up);
    if (!/^RFB 003\.00[3-8]\n$/.test((await r.read(12)).toString('latin1'))) throw new Error('not an RFB server');
    up.write('RFB 003.008\n');
    const n = (await r.read(1))[0]!;
    const types = await r.read(n);
    if (!types.includes(2)) throw new Error('the display does not offer VNC authentication');
    up.write(Buffer.from([2]));
    up.write(vncResponse(password, await r.read(16)));
    if ((await r.read(4)).readUInt32BE(0) !== 0) throw new Error('the display refused the password');
    const rest = r.detach();
    if (rest.length) up.unshift(rest);
    return up;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((res) => s.close(() => res()));
  }
}

/** Reads exact byte counts from a socket, in order, until detached. */
class Reader {
  private buf = Buffer.alloc(0);
  private waiting: { n: number; resolve: (b: Buffer) => void } | null = null;
  private readonly onData = (d: Buffer) => {
    this.buf = Buffer.concat([this.buf, d]);
    this.pump();
  };

  constructor(private readonly sock: net.Socket) {
    sock.on('data', this.onData);
  }

  private pump(): void {
    if (this.waiting && this.buf.length >= this.waiting.n) {
      const { n, resolve } = this.waiting;
      this.waiting = null;
      const out = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      resolve(out);
    }
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.waiting = { n, resolve };
      this.pump();
    });
  }

  /** Stops reading and hands back what was read past the last read(). */
  detach(): Buffer {
    this.sock.off('data', this.onData);
    this.sock.pause();
    return this.buf;
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

function failure(reason: string): Buffer {
  const r = Buffer.from(reason);
  return Buffer.concat([u32(1), u32(r.length), r]);
}
