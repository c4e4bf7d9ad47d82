import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ADMIN, basicCaller, type TestServer } from './harness.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'opensigma.js');

/** A CLI command (`user add`, `token create`, ...) as a separate process against a running test server's data. */
export async function cli(t: TestServer, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args], { env: cliEnv(t), timeout: 60000 });
  return stdout;
}

function cliEnv(t: TestServer): Record<string, string> {
  const env: Record<string, string> = { ...process.env, OPENSIGMA_DATA: t.dataDir, OPENSIGMA_LOG_LEVEL: 'silent' } as Record<string, string>;
  delete env.OPENSIGMA_ADMIN_EMAIL;
  delete env.OPENSIGMA_ADMIN_PASSWORD;
  if (t.config.databaseUrl) env.OPENSIGMA_DATABASE_URL = t.config.databaseUrl;
  return env;
}

/** cli() with `input` on the command's standard input. Rejects with the command's stderr if it fails. */
export async function cliWithInput(t: TestServer, input: string, ...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(t), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.end(input);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`exit ${code}: ${err}`);
  return out;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** `opensigma serve` as a real child process on its own data dir and port, for tests that kill it. */
export class CliServer {
  private child: ChildProcess | null = null;
  private output = '';
  readonly api: string;

  constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly env: Record<string, string> = {},
  ) {
    this.api = `http://127.0.0.1:${port}/api/2.0`;
  }

  async start(): Promise<void> {
    this.child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        ...process.env,
        OPENSIGMA_LISTEN: `127.0.0.1:${this.port}`,
        OPENSIGMA_DATA: this.dataDir,
        OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
        OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
        OPENSIGMA_LOG_LEVEL: 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d) => (this.output += d));
    this.child.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 30000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`opensigma exited with ${this.child.exitCode}: ${this.output}`);
      try {
        if ((await fetch(`http://127.0.0.1:${this.port}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`opensigma did not become healthy: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** kill -9: no shutdown hook runs, nothing is flushed that was not already on disk. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
    this.child = null;
  }

  get log(): string {
    return this.output;
  }

  async call(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
    return basicCaller(this.api, ADMIN)(method, p, body);
  }
}
