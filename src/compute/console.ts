import net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * The serial console endpoint behind csconsole://HOST:PORT: asks for the server's vnc_password, then joins the
 * client to the guest's ttyS0. One client at a time; a second one is told so and disconnected.
 *
 * A client that puts STX (\x02) in its password line (the web console's bridge does) is first shown what the guest
 * already wrote, so a page opened on a running guest is not blank. No terminal sends STX there by itself, so
 * telnet and nc clients see the console as before.
 */
/** How much of what the guest already wrote a client asking for it is shown. */
export const HISTORY_BYTES = 16 * 1024;
export const WANTS_HISTORY = '\x02';

export class ConsoleGateway {
  private server: net.Server | null = null;
  private client: net.Socket | null = null;

  constructor(
    private readonly bindHost: string,
    private readonly password: () => Promise<string>,
    private readonly attach: () => Promise<Duplex>,
    private readonly history: () => Promise<Buffer> = async () => Buffer.alloc(0),
  ) {}

  async open(): Promise<number> {
    if (!this.server) {
      const server = net.createServer((sock) => void this.handle(sock));
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
    if (this.client) {
      sock.end('Another client is connected to this console.\r\n');
      return;
    }
    this.client = sock;
    sock.once('close', () => {
      if (this.client === sock) this.client = null;
    });
    sock.write('Password: ');
    let buf = '';
    const onData = async (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      // Telnet clients may send IAC negotiation bytes before the line; keep only printable text.
      const nl = buf.search(/[\r\n]/);
      if (nl < 0) {
        if (buf.length > 1024) sock.destroy();
        return;
      }
      sock.off('data', onData);
      const line = buf.slice(0, nl);
      const given = line.replace(/\xff[\xfb-\xfe]./g, '').replace(/[^\x20-\x7e]/g, '');
      const rest = buf.slice(nl + 1).replace(/^\n/, '');
      if (given !== (await this.password())) {
        sock.end('\r\nWrong password.\r\n');
        return;
      }
      sock.write('\r\nConnected to the serial console.\r\n');
      try {
        // Read before attaching: what the attach itself makes the guest write (a prompt) then comes once, after it.
        const before = line.includes(WANTS_HISTORY) ? await this.history().catch(() => Buffer.alloc(0)) : null;
        const serial = await this.attach();
        if (before?.length) sock.write(before);
        serial.on('error', () => sock.destroy());
        sock.on('close', () => serial.destroy());
        serial.on('close', () => sock.destroy());
        if (rest) serial.write(rest);
        sock.pipe(serial);
        serial.pipe(sock);
      } catch (e) {
        sock.end(`\r\nThe console is not available: ${(e as Error).message}\r\n`);
      }
    };
    sock.on('data', onData);
  }

  async close(): Promise<void> {
    this.client?.destroy();
    this.client = null;
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
