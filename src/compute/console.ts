import net from 'node:net';
import type { Duplex } from 'node:stream';
import { GuessThrottle } from '../domain/guess-throttle.ts';
import { WANTS_HISTORY } from '../domain/console-protocol.ts';

/** A connection that has not given the right password within this time is closed. */
export const AUTH_TIMEOUT_MS = 5_000;
/** Connections still being asked for the password, at most, per console. */
const MAX_UNAUTHENTICATED = 16;

/** The peer's address, the key that wrong passwords are counted under. */
export const sourceOf = (sock: net.Socket): string => (sock.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');

/** How much of what the guest already wrote a client asking for it is shown. */
export const HISTORY_BYTES = 16 * 1024;
export { WANTS_HISTORY };

/**
 * The serial console endpoint behind csconsole://HOST:PORT: asks for the server's vnc_password, then joins the
 * client to the guest's ttyS0. One client at a time: the console is taken by the first connection that gives the
 * right password (never by one that only connected), and free again the moment its holder disconnects. Wrong
 * passwords are slowed down per source by the compute node's throttle.
 *
 * A client that puts STX (\x02) in its password line (the web console's bridge does) is first shown what the guest
 * already wrote, so a page opened on a running guest is not blank. No terminal sends STX there by itself, so
 * telnet and nc clients see the console as before.
 */
export class ConsoleGateway {
  private server: net.Server | null = null;
  private holder: net.Socket | null = null;
  private readonly pending = new Set<net.Socket>();

  constructor(
    private readonly bindHost: string,
    private readonly password: () => Promise<string>,
    private readonly attach: () => Promise<Duplex>,
    private readonly history: () => Promise<Buffer> = async () => Buffer.alloc(0),
    private readonly throttle: GuessThrottle = new GuessThrottle(),
  ) {}

  async open(): Promise<number> {
    if (!this.server) {
      const server = net.createServer((sock) => void this.handle(sock).catch(() => sock.destroy()));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, this.bindHost, () => resolve());
      });
      this.server = server;
    }
    return (this.server.address() as net.AddressInfo).port;
  }

  get port(): number | null {
    return this.server ? (this.server.address() as net.AddressInfo).port : null;
  }

  private async handle(sock: net.Socket): Promise<void> {
    sock.on('error', () => {});
    if (this.pending.size >= MAX_UNAUTHENTICATED) return void sock.end('Too many connections are waiting to log in to this console.\r\n');
    this.pending.add(sock);
    const timer = setTimeout(() => sock.end('\r\nNo password given in time.\r\n'), AUTH_TIMEOUT_MS);
    sock.once('close', () => {
      clearTimeout(timer);
      this.pending.delete(sock);
      if (this.holder === sock) this.holder = null;
    });
    // The holder's console is free as soon as it says it is done, before its socket has fully closed.
    sock.once('end', () => {
      if (this.holder === sock) this.holder = null;
    });
    sock.write('Password: ');
    const line = await readLine(sock);
    if (line === null) return;
    clearTimeout(timer);
    const source = sourceOf(sock);
    const turn = this.throttle.admit(source, Date.now());
    if (!turn.ok) return void sock.end(`\r\nToo many wrong passwords from ${source}; try again in ${Math.ceil(turn.retryAfterMs / 1000)} s.\r\n`);
    if (turn.waitMs) await new Promise((r) => setTimeout(r, turn.waitMs));
    if (sock.destroyed) return;
    if (line.given !== (await this.password())) {
      this.throttle.fail(source, Date.now());
      return void sock.end('\r\nWrong password.\r\n');
    }
    this.throttle.succeed(source);
    this.pending.delete(sock);
    if (this.holder && !this.holder.destroyed && this.holder.readable) return void sock.end('\r\nAnother client is connected to this console.\r\n');
    this.holder = sock;
    sock.write('\r\nConnected to the serial console.\r\n');
    try {
      // Read before attaching: what the attach itself makes the guest write (a prompt) then comes once, after it.
      const before = line.wantsHistory ? await this.history().catch(() => Buffer.alloc(0)) : null;
      const serial = await this.attach();
      if (before?.length) sock.write(before);
      serial.on('error', () => sock.destroy());
      sock.on('close', () => serial.destroy());
      serial.on('close', () => sock.destroy());
      if (line.rest) serial.write(line.rest);
      sock.pipe(serial);
      serial.pipe(sock);
    } catch (e) {
      if (this.holder === sock) this.holder = null;
      sock.end(`\r\nThe console is not available: ${(e as Error).message}\r\n`);
    }
  }

  async close(): Promise<void> {
    this.holder?.destroy();
    this.holder = null;
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** The password line, without telnet's negotiation bytes, and what came after it; null if the client left first. */
function readLine(sock: net.Socket): Promise<{ given: string; wantsHistory: boolean; rest: string } | null> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const nl = buf.search(/[\r\n]/);
      if (nl < 0) {
        if (buf.length > 1024) sock.destroy();
        return;
      }
      sock.off('data', onData);
      sock.off('close', onClose);
      // Telnet clients may send IAC negotiation bytes before the line; keep only printable text.
      const given = buf
        .slice(0, nl)
        .replace(/\xff[\xfb-\xfe]./g, '')
        .replace(/[^\x20-\x7e]/g, '');
      sock.pause();
      resolve({ given, wantsHistory: buf.slice(0, nl).includes(WANTS_HISTORY), rest: buf.slice(nl + 1).replace(/^\n/, '') });
    };
    const onClose = () => resolve(null);
    sock.on('data', onData);
    sock.once('close', onClose);
  });
}
