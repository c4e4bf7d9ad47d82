import net from 'node:net';

/** A TCP client for protocol tests: exact-length reads, reads until a text appears, and the close. */
export class SocketReader {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on('error', () => {});
    this.closed = new Promise((r) =>
      sock.on('close', () => {
        this.ended = true;
        this.wake?.();
        r();
      }),
    );
  }

  /** `localAddress` (another loopback address, 127.0.0.2…) makes the client a different source. */
  static connect(url: string, localAddress?: string): Promise<SocketReader> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port: Number(u.port), host: u.hostname, localAddress }, () => resolve(new SocketReader(sock)));
      sock.once('error', reject);
    });
  }

  private async until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.ended) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(-200))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(-200))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
    }
  }

  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.buf.length >= n, timeoutMs, `${n} bytes`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Everything received up to and including `text`. */
  async readUntil(text: string, timeoutMs = 5000): Promise<string> {
    await this.until(() => this.buf.toString('latin1').includes(text), timeoutMs, JSON.stringify(text));
    const s = this.buf.toString('latin1');
    const end = s.indexOf(text) + text.length;
    this.buf = this.buf.subarray(end);
    return s.slice(0, end);
  }

  /** Everything received until the server closes the connection. */
  async readToEnd(timeoutMs = 5000): Promise<string> {
    await this.until(() => this.ended, timeoutMs, 'the connection to close');
    const s = this.buf.toString('latin1');
    this.buf = Buffer.alloc(0);
    return s;
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Whether anything still listens at a tcp URL. */
export function isListening(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
