import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'opensigma.js');

export interface Ran {
  /** The exit status, or the signal that ended the process. */
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/**
 * The `opensigma` client as a user runs it: a child process with a home of its own (config and upload state in a
 * temporary directory) and none of the test run's OPENSIGMA_* variables.
 */
export class CliUser {
  readonly home = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-cli-home-'));
  constructor(readonly extraEnv: Record<string, string> = {}) {}

  env(more: Record<string, string> = {}): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OPENSIGMA_')) env[k] = v;
    const dirs = { HOME: this.home, XDG_CONFIG_HOME: path.join(this.home, 'config'), XDG_STATE_HOME: path.join(this.home, 'state') };
    return { ...env, ...dirs, ...this.extraEnv, ...more };
  }

  spawn(args: string[], env: Record<string, string> = {}): ChildProcess {
    return spawn(process.execPath, [BIN, ...args], { env: this.env(env), stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Runs to the end; never rejects on a failing exit status (tests look at it). */
  async run(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Ran> {
    const child = this.spawn(args, opts.env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdin!.end(opts.input ?? '');
    const code = await new Promise<number | string | null>((r) => child.once('close', (c, sig) => r(c ?? sig)));
    return { code, stdout, stderr };
  }

  /** run() that must succeed; its stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.run(args);
    if (r.code !== 0) throw new Error(`opensigma ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async json(...args: string[]): Promise<any> {
    return JSON.parse(await this.ok(...args, '-o', 'json'));
  }

  cleanup(): void {
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}
