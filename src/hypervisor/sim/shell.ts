import { Duplex, PassThrough } from 'node:stream';

/** A serial console that answers like a small busybox guest: a prompt, a few commands, poweroff. */
export class SimShell {
  private line = '';
  private readonly toGuest = new PassThrough();
  private readonly fromGuest = new PassThrough();
  private attached: Duplex | null = null;

  /** The tail of what the guest wrote, as a real serial log would hold it. */
  private written = Buffer.alloc(0);

  constructor(
    private readonly hostname: string,
    private readonly onPowerOff: () => void,
  ) {
    this.toGuest.on('data', (chunk: Buffer) => this.input(chunk.toString('latin1')));
    this.fromGuest.on('data', (chunk: Buffer) => {
      this.written = Buffer.concat([this.written, chunk]);
      if (this.written.length > 128 * 1024) this.written = this.written.subarray(this.written.length - 64 * 1024);
    });
  }

  history(max: number): Buffer {
    return Buffer.from(this.written.subarray(Math.max(0, this.written.length - max)));
  }

  private get prompt(): string {
    return `root@${this.safeName}:~# `;
  }

  private get safeName(): string {
    return this.hostname.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'guest';
  }

  /** Joins a client to the console; a newer client replaces an older one. */
  attach(): Duplex {
    this.attached?.destroy();
    const reader = new PassThrough();
    const forward = (c: Buffer) => reader.write(c);
    this.fromGuest.on('data', forward);
    const duplex = Duplex.from({ readable: reader, writable: new PassThrough().on('data', (c) => this.toGuest.write(c)) });
    duplex.on('close', () => this.fromGuest.off('data', forward));
    this.attached = duplex;
    queueMicrotask(() => this.fromGuest.write(`\r\n${this.prompt}`));
    return duplex;
  }

  reboot(): void {
    this.fromGuest.write(`\r\nreboot: Restarting system\r\n\r\nopensigma-sim guest ${this.safeName}\r\n${this.prompt}`);
  }

  destroy(): void {
    this.attached?.destroy();
    this.attached = null;
  }

  private input(s: string): void {
    for (const ch of s) {
      if (ch === '\r' || ch === '\n') {
        if (ch === '\n' && this.line === '' && this.lastWasCr) continue;
        this.lastWasCr = ch === '\r';
        this.fromGuest.write('\r\n');
        const out = this.run(this.line.trim());
        this.line = '';
        if (out === null) return;
        this.fromGuest.write(out + this.prompt);
      } else if (ch === '\x7f' || ch === '\b') {
        if (this.line.length) {
          this.line = this.line.slice(0, -1);
          this.fromGuest.write('\b \b');
        }
      } else if (ch >= ' ') {
        this.lastWasCr = false;
        this.line += ch;
        this.fromGuest.write(ch); // echo, as a tty in character mode does
      }
    }
  }

  private lastWasCr = false;

  private run(cmd: string): string | null {
    const [name, ...args] = cmd.split(/\s+/);
    switch (name) {
      case '':
        return '';
      case 'echo':
        return `${args.join(' ')}\r\n`;
      case 'hostname':
        return `${this.safeName}\r\n`;
      case 'uname':
        return args.includes('-a') ? `Linux ${this.safeName} 6.1.0-sim #1 SMP x86_64 GNU/Linux\r\n` : 'Linux\r\n';
      case 'whoami':
        return 'root\r\n';
      case 'poweroff':
      case 'halt':
        this.fromGuest.write('reboot: Power down\r\n');
        setTimeout(() => this.onPowerOff(), 10).unref();
        return null;
      default:
        return `sh: ${name}: not found\r\n`;
    }
  }
}
