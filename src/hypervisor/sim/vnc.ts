import crypto from 'node:crypto';
import net from 'node:net';
import { drawText } from './font.ts';
import { vncKey, vncResponse } from '../../domain/console-protocol.ts';

export const RFB_WIDTH = 640;
export const RFB_HEIGHT = 400;

export { vncKey, vncResponse };

interface PixelFormat {
  bpp: number;
  bigEndian: boolean;
  rMax: number;
  gMax: number;
  bMax: number;
  rShift: number;
  gShift: number;
  bShift: number;
}

const DEFAULT_FORMAT: PixelFormat = { bpp: 32, bigEndian: false, rMax: 255, gMax: 255, bMax: 255, rShift: 16, gShift: 8, bShift: 0 };

function encodeFormat(f: PixelFormat): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(f.bpp, 0);
  b.writeUInt8(24, 1); // depth
  b.writeUInt8(f.bigEndian ? 1 : 0, 2);
  b.writeUInt8(1, 3); // true colour
  b.writeUInt16BE(f.rMax, 4);
  b.writeUInt16BE(f.gMax, 6);
  b.writeUInt16BE(f.bMax, 8);
  b.writeUInt8(f.rShift, 10);
  b.writeUInt8(f.gShift, 11);
  b.writeUInt8(f.bShift, 12);
  return b;
}

function decodeFormat(b: Buffer): PixelFormat {
  return {
    bpp: b.readUInt8(0),
    bigEndian: b.readUInt8(2) !== 0,
    rMax: b.readUInt16BE(4),
    gMax: b.readUInt16BE(6),
    bMax: b.readUInt16BE(8),
    rShift: b.readUInt8(10),
    gShift: b.readUInt8(11),
    bShift: b.readUInt8(12),
  };
}

/** The guest's screen as RGB triples: a dark console with a frame and the server's name in block letters. */
export function renderScreen(title: string): Uint8Array {
  const px = new Uint8Array(RFB_WIDTH * RFB_HEIGHT * 3);
  const set = (x: number, y: number, rgb: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= RFB_WIDTH || y >= RFB_HEIGHT) return;
    px.set(rgb, (y * RFB_WIDTH + x) * 3);
  };
  for (let y = 0; y < RFB_HEIGHT; y++) for (let x = 0; x < RFB_WIDTH; x++) set(x, y, [16, 24, 48]);
  for (let i = 0; i < 4; i++) {
    for (let x = 0; x < RFB_WIDTH; x++) {
      set(x, i, [0, 160, 220]);
      set(x, RFB_HEIGHT - 1 - i, [0, 160, 220]);
    }
    for (let y = 0; y < RFB_HEIGHT; y++) {
      set(i, y, [0, 160, 220]);
      set(RFB_WIDTH - 1 - i, y, [0, 160, 220]);
    }
  }
  drawText(title.toUpperCase(), 24, 24, 6, (x, y) => set(x, y, [240, 240, 240]), RFB_WIDTH - 48);
  return px;
}

function encodePixels(rgb: Uint8Array, x0: number, y0: number, w: number, h: number, f: PixelFormat): Buffer {
  const bytes = f.bpp / 8;
  const out = Buffer.alloc(w * h * bytes);
  let o = 0;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const i = (y * RFB_WIDTH + x) * 3;
      const v =
        ((Math.round((rgb[i]! * f.rMax) / 255) << f.rShift) |
          (Math.round((rgb[i + 1]! * f.gMax) / 255) << f.gShift) |
          (Math.round((rgb[i + 2]! * f.bMax) / 255) << f.bShift)) >>>
        0;
      if (bytes === 4) f.bigEndian ? out.writeUInt32BE(v, o) : out.writeUInt32LE(v, o);
      else if (bytes === 2) f.bigEndian ? out.writeUInt16BE(v & 0xffff, o) : out.writeUInt16LE(v & 0xffff, o);
      else out.writeUInt8(v & 0xff, o);
      o += bytes;
    }
  }
  return out;
}

/** Reads exact byte counts from a socket, in order. */
class Reader {
  private buf = Buffer.alloc(0);
  private waiting: { n: number; resolve: (b: Buffer) => void } | null = null;
  constructor(sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.pump();
    });
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
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** SecurityResult "failed" with its reason string (RFB 3.8). */
function failure(reason: string): Buffer {
  const r = Buffer.from(reason);
  return Buffer.concat([u32(1), u32(r.length), r]);
}

/**
 * A guest display over RFB 3.8 (3.3 and 3.7 clients too) with VNC authentication (security type 2), the way
 * CloudSigma's vnc_url serves one: password = the server's vnc_password. One framebuffer, updated on request.
 */
export class SimVncServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly screen: Uint8Array;

  constructor(
    readonly title: string,
    readonly password: string,
    private readonly bindHost = '127.0.0.1',
  ) {
    this.screen = renderScreen(title);
  }

  async listen(): Promise<number> {
    if (!this.server) {
      const server = net.createServer((s) => void this.session(s).catch(() => s.destroy()));
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
    const r = new Reader(sock);
    sock.write('RFB 003.008\n');
    const version = (await r.read(12)).toString('latin1');
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(version);
    if (!m) return void sock.destroy();
    const minor = Number(m[1]) > 3 ? 8 : Math.min(Number(m[2]), 8);
    if (minor >= 7) {
      sock.write(Buffer.from([1, 2])); // one security type: VNC authentication
      if ((await r.read(1))[0] !== 2) {
        return void sock.end(minor >= 8 ? failure('Only VNC authentication (type 2) is offered') : u32(1));
      }
    } else sock.write(u32(2));
    const challenge = crypto.randomBytes(16);
    sock.write(challenge);
    const answer = await r.read(16);
    if (!crypto.timingSafeEqual(answer, vncResponse(this.password, challenge))) {
      return void sock.end(minor >= 8 ? failure('Authentication failed: wrong password') : u32(1));
    }
    sock.write(u32(0));
    await r.read(1); // ClientInit: shared flag; every client shares this display
    const name = Buffer.from(this.title, 'utf8');
    const size = Buffer.alloc(4);
    size.writeUInt16BE(RFB_WIDTH, 0);
    size.writeUInt16BE(RFB_HEIGHT, 2);
    sock.write(Buffer.concat([size, encodeFormat(DEFAULT_FORMAT), u32(name.length), name]));
    let format = DEFAULT_FORMAT;
    for (;;) {
      const type = (await r.read(1))[0];
      switch (type) {
        case 0: {
          const f = decodeFormat((await r.read(19)).subarray(3));
          if (![8, 16, 32].includes(f.bpp)) return void sock.destroy();
          format = f;
          break;
        }
        case 2: {
          const n = (await r.read(3)).readUInt16BE(1);
          await r.read(n * 4); // any encoding list: Raw is always allowed
          break;
        }
        case 3: {
          const req = await r.read(9);
          const incremental = req[0] !== 0;
          // The screen never changes, so an incremental request waits for a change that never comes (RFC 6143 allows it).
          if (incremental) break;
          const x = Math.min(req.readUInt16BE(1), RFB_WIDTH);
          const y = Math.min(req.readUInt16BE(3), RFB_HEIGHT);
          const w = Math.min(req.readUInt16BE(5), RFB_WIDTH - x);
          const h = Math.min(req.readUInt16BE(7), RFB_HEIGHT - y);
          const head = Buffer.alloc(16);
          head.writeUInt8(0, 0);
          head.writeUInt16BE(1, 2);
          head.writeUInt16BE(x, 4);
          head.writeUInt16BE(y, 6);
          head.writeUInt16BE(w, 8);
          head.writeUInt16BE(h, 10);
          head.writeInt32BE(0, 12); // Raw
          sock.write(Buffer.concat([head, encodePixels(this.screen, x, y, w, h, format)]));
          break;
        }
        case 4:
          await r.read(7); // KeyEvent
          break;
        case 5:
          await r.read(5); // PointerEvent
          break;
        case 6: {
          const n = (await r.read(7)).readUInt32BE(3);
          await r.read(n);
          break;
        }
        default:
          return void sock.destroy();
      }
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
