import net from 'node:net';
import { EventEmitter } from 'node:events';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    message: string,
    readonly errorClass: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A QMP client over a unix socket: greeting + `qmp_capabilities`, commands matched to replies by id, events
 * emitted as 'event' (QmpEvent); 'close' when the socket ends (QEMU exited or closed the monitor).
 */
export class QmpClient extends EventEmitter {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    super();
  }

  /** Connects, retrying while the socket does not exist yet (QEMU creates it a few ms after spawn). */
  static async connect(socketPath: string, opts: { timeoutMs?: number; retryMs?: number } = {}): Promise<QmpClient> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    for (;;) {
      try {
        return await QmpClient.connectOnce(socketPath, Math.max(100, deadline - Date.now()));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (Date.now() >= deadline || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw e;
        await new Promise((r) => setTimeout(r, opts.retryMs ?? 25));
      }
    }
  }

  private static connectOnce(socketPath: string, timeoutMs: number): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath);
      const client = new QmpClient(sock);
      let greeted = false;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`QMP greeting timeout on ${socketPath}`));
      }, timeoutMs);
      sock.once('error', (e) => {
        clearTimeout(timer);
        if (!greeted) reject(e);
      });
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => client.onData(chunk));
      sock.on('close', () => client.onClose());
      client.once('greeting', () => {
        greeted = true;
        sock.on('error', () => {}); // close follows; pending commands are rejected there
        client
          .execute('qmp_capabilities', undefined, timeoutMs)
          .then(() => {
            clearTimeout(timer);
            resolve(client);
          })
          .catch((e: Error) => {
            clearTimeout(timer);
            sock.destroy();
            reject(e);
          });
      });
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) this.emit('greeting', msg.QMP);
      else if ('event' in msg) this.emit('event', msg as unknown as QmpEvent);
      else if ('id' in msg) {
        const p = this.pending.get(String(msg.id));
        if (!p) continue;
        this.pending.delete(String(msg.id));
        clearTimeout(p.timer);
        if ('error' in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(err.desc ?? 'QMP error', err.class ?? 'GenericError'));
        } else p.resolve(msg.return);
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('QMP connection closed'));
      this.pending.delete(id);
    }
    this.emit('close');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs a command; resolves with its `return` value, rejects with QmpError or on close/timeout. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10000): Promise<T> {
    if (this.closed) return Promise.reject(new Error('QMP connection closed'));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command} timed out`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
