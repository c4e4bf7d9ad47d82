import net from 'node:net';

/** Placeholder: a display served over RFB with VNC authentication (to be completed). */
export class SimVncServer {
  private server: net.Server | null = null;
  constructor(
    readonly title: string,
    readonly password: string,
  ) {}

  async listen(): Promise<number> {
    if (!this.server) {
      this.server = net.createServer((s) => s.end('RFB 003.008\n'));
      await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    }
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
