import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN } from './harness.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/opensigma.js');

/** One opensigma process (serve, agent or migrate) started the way an operator would, with its JSON log kept. */
export interface NodeProcess {
  kind: string;
  proc: ChildProcess;
  dataDir: string;
  env: Record<string, string>;
  /** Base URL of an API node (serve only). */
  url: string;
  api: string;
  /** Parsed JSON log lines so far. */
  logs: any[];
  stderr: string;
  exited: Promise<number | null>;
  call(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A port free right now on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `opensigma <kind>` and resolves once it is serving (serve) or running its hosts (agent). */
export async function startNode(kind: 'serve' | 'agent', env: Record<string, string>, dataDir?: string, nodeArgs: string[] = []): Promise<NodeProcess> {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `opensigma-${kind}-`));
  const fullEnv = {
    OPENSIGMA_LISTEN: `127.0.0.1:${kind === 'serve' ? await freePort() : 0}`,
    OPENSIGMA_DATA: dir,
    OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
    OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
    OPENSIGMA_LOG_LEVEL: 'info',
    ...env,
  };
  const proc = spawn(process.execPath, [...nodeArgs, BIN, kind], { env: { ...process.env, ...fullEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  const node: NodeProcess = {
    kind,
    proc,
    dataDir: dir,
    env: fullEnv,
    url: '',
    api: '',
    logs: [],
    stderr: '',
    exited: new Promise((r) => proc.once('exit', (code) => r(code))),
    call: async (method, p, body, headers = {}) => {
      const res = await fetch(p.startsWith('http') ? p : `${node.api}${p}`, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return node.exited;
    },
  };
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        node.logs.push(JSON.parse(line));
      } catch {
        // a plain line
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (node.stderr += d.toString()));
  const ready = kind === 'serve' ? 'opensigma is serving' : 'compute agent running';
  const deadline = Date.now() + 90000; // generous: the machine may be busy
  if (kind === 'serve') {
    node.url = `http://${fullEnv.OPENSIGMA_LISTEN}`;
    node.api = `${node.url}/api/2.0`;
  }
  // Ready: the log says so, or (when the log level hides it) the API answers.
  const healthy = () =>
    kind === 'serve'
      ? fetch(`${node.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      : Promise.resolve(false);
  for (;;) {
    if (node.logs.some((l) => l.msg === ready) || (await healthy())) return node;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`opensigma ${kind} did not start (exit ${proc.exitCode}): ${node.stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `opensigma <args>` to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
