import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/cli-process.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

async function waitHttp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`child exited: ${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`not up: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Proc {
  url: string;
  /** CPU seconds the process has used so far (user + system), from /proc. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function cpuSecondsOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return NaN; // no /proc: the CPU column stays empty
  }
}

function run(args: string[], env: Record<string, string>, healthUrl: string, url: string): Promise<Proc> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-4000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  return waitHttp(healthUrl, child, () => out).then(() => ({
    url,
    cpuSeconds: () => cpuSecondsOf(child.pid!),
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  }));
}

/** The real thing: `opensigma serve` (sim driver, SQLite) on its own data dir. */
export async function startOpensigma(dataDir: string, env: Record<string, string>): Promise<Proc> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  return run(
    ['bin/opensigma.js', 'serve'],
    { OPENSIGMA_LISTEN: `127.0.0.1:${port}`, OPENSIGMA_DATA: dataDir, OPENSIGMA_DRIVER: 'sim', ...env },
    `${base}/healthz`,
    `${base}/api/2.0`,
  );
}

export async function startBaseline(): Promise<Proc> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  return run(['--import', 'tsx', 'bench/hello.ts', String(port)], {}, `${base}/`, `${base}/`);
}
