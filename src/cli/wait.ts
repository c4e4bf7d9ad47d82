import { Option, type Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import type { Api, Json } from './http.ts';

/** Spinners and bars only for a person watching: stdout is a terminal (and stderr, where they are drawn). */
export function drawing(): boolean {
  return !!process.stdout.isTTY && !!process.stderr.isTTY;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** One status line on stderr, redrawn in place; draws nothing when not on a terminal. */
export class StatusLine {
  private frame = 0;
  private timer: NodeJS.Timeout | null = null;
  private text = '';
  private readonly on = drawing();

  start(text: string): this {
    this.text = text;
    if (this.on && !this.timer) this.timer = setInterval(() => this.draw(), 100).unref();
    this.draw();
    return this;
  }

  update(text: string): void {
    this.text = text;
    this.draw();
  }

  /** A bar for `done` of `total` (bytes or percent). */
  progress(label: string, done: number, total: number, unit: 'bytes' | 'percent' = 'bytes'): void {
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const cols = Math.max(10, Math.min(40, (process.stderr.columns || 80) - label.length - 30));
    const full = Math.round(ratio * cols);
    const amount = unit === 'bytes' ? `${humanBytes(done)}/${humanBytes(total)}` : `${Math.round(done)}%`;
    this.update(`${label} [${'#'.repeat(full)}${'.'.repeat(cols - full)}] ${amount}`);
  }

  private draw(): void {
    if (!this.on) return;
    const spin = FRAMES[this.frame++ % FRAMES.length];
    const line = `${spin} ${this.text}`.slice(0, (process.stderr.columns || 80) - 1);
    process.stderr.write(`\r\x1b[2K${line}`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.on) process.stderr.write('\r\x1b[2K');
  }
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export interface WaitOptions {
  wait?: boolean;
  timeout?: string;
}

export function withWait(cmd: Command, what: string): Command {
  cmd.option('--wait', `wait until ${what}`);
  cmd.addOption(new Option('--timeout <duration>', 'longest wait, e.g. 90s, 5m').default('5m'));
  return cmd;
}

/** 90, 90s, 5m, 1h: in milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`not a duration: ${s} (for example 90s, 5m)`);
  const n = Number(m[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `step` until it says done; a timeout is an error naming what was awaited and where it stood. */
type Step = () => Promise<{ done: boolean; state: string }>;

export async function pollUntil(what: string, timeout: string | undefined, step: Step, line = new StatusLine()): Promise<void> {
  const limit = parseDuration(timeout ?? '5m');
  const deadline = Date.now() + limit;
  line.start(what);
  try {
    for (;;) {
      const s = await step();
      if (s.done) return;
      if (Date.now() > deadline) throw new CliError(`timed out after ${timeout}: ${what} (now ${s.state})`);
      await sleep(200);
    }
  } finally {
    line.stop();
  }
}

const STABLE = new Set(['running', 'stopped', 'paused', 'unavailable']);

/** Until the server shows `target`. Landing on another steady state after moving is a failure (a start that fell back). */
export async function waitForServer(api: Api, uuid: string, name: string, target: string, timeout?: string): Promise<void> {
  let moved = false;
  const line = new StatusLine();
  await pollUntil(
    `waiting for server ${name} to be ${target}`,
    timeout,
    async () => {
      const s = await api.call('GET', `/servers/${uuid}/`);
      line.update(`server ${name}: ${s.status}`);
      if (s.status === target) return { done: true, state: s.status };
      if (!STABLE.has(s.status)) moved = true;
      else if (moved) throw new CliError(`server ${name} is ${s.status}, not ${target}`);
      return { done: false, state: s.status };
    },
    line,
  );
}

/** Until the drive leaves its busy state (creating, cloning, resizing, uploading). */
export async function waitForDrive(api: Api, uuid: string, name: string, timeout?: string): Promise<Json> {
  let last: Json;
  const line = new StatusLine();
  await pollUntil(
    `waiting for drive ${name}`,
    timeout,
    async () => {
      last = await api.call('GET', `/drives/${uuid}/`);
      line.update(`drive ${name}: ${last.status}`);
      return { done: last.status === 'mounted' || last.status === 'unmounted', state: last.status };
    },
    line,
  );
  return last;
}

/** Until the job ends, drawing its progress; a job that ends other than in success is an error. */
export async function waitForJob(api: Api, uuid: string, label: string, timeout?: string): Promise<Json> {
  let job: Json;
  const line = new StatusLine();
  await pollUntil(
    `waiting for ${label}`,
    timeout,
    async () => {
      job = await api.call('GET', `/jobs/${uuid}/`);
      line.progress(label, Number(job?.data?.progress ?? 0), 100, 'percent');
      return { done: job.state !== 'started', state: `${job.state}, ${job?.data?.progress ?? 0}%` };
    },
    line,
  );
  if (job.state !== 'success') throw new CliError(`${label}: job ${uuid} ended in ${job.state}${job.data?.error_message ? `: ${job.data.error_message}` : ''}`);
  return job;
}
