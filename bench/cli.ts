/**
 * The `opensigma` command as its users meet it: the start-up of `servers list` and of `serve --ephemeral` beside
 * `node -e 0`, and `drives upload`/`download` of 1 GiB beside curl on the same routes (the plain upload, PUT,
 * and the download), all against a real opensigma process. Run alone: node --import tsx bench/cli.ts [--quick]
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOpensigma } from './processes.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'opensigma.js');
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password';
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Seconds a command takes to exit, the median of `n` runs; fails loudly when it fails. */
function timed(cmd: string, args: string[], env: Record<string, string> = {}, n = 1): number {
  const runs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status} ${r.stderr}`);
    runs.push((performance.now() - t) / 1000);
  }
  return median(runs);
}

/** Seconds from spawning `serve --ephemeral` to its JSON line. */
async function ephemeralLine(): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, [BIN, 'serve', '--ephemeral'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => ((out += d), out.includes('\n') && resolve()));
    child.once('exit', (c) => reject(new Error(`serve --ephemeral exited ${c}`)));
  });
  const s = (performance.now() - t) / 1000;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
  return s;
}

export interface CliRow {
  name: string;
  value: string;
  baseline: string;
  ratio: string;
}

export async function runCliBench(quick = false): Promise<CliRow[]> {
  const n = quick ? 3 : 9;
  const rows: CliRow[] = [];
  const node0 = timed(process.execPath, ['-e', '0'], {}, n);
  const startRow = (name: string, s: number) =>
    rows.push({ name, value: `${(s * 1000).toFixed(0)} ms`, baseline: `node -e 0: ${(node0 * 1000).toFixed(0)} ms`, ratio: (s / node0).toFixed(1) });

  say('serve --ephemeral, to its JSON line');
  const eph: number[] = [];
  for (let i = 0; i < (quick ? 2 : 5); i++) eph.push(await ephemeralLine());
  startRow('`opensigma serve --ephemeral` to its JSON line (goal 3 s)', median(eph));

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-cli-'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-cli-files-'));
  const os1 = await startOpensigma(dataDir, {
    OPENSIGMA_ADMIN_EMAIL: EMAIL,
    OPENSIGMA_ADMIN_PASSWORD: PASSWORD,
    OPENSIGMA_LOG_LEVEL: 'warn',
    OPENSIGMA_QUOTA_DRIVE_BYTES: '0',
    OPENSIGMA_RATE_GET: '1000000000',
    OPENSIGMA_RATE_POST: '1000000000',
  });
  try {
    const env = { OPENSIGMA_URL: os1.url, OPENSIGMA_USER: EMAIL, OPENSIGMA_PASSWORD: PASSWORD, XDG_CONFIG_HOME: work };
    say('opensigma servers list');
    for (let i = 0; i < 10; i++) timed(process.execPath, [BIN, 'servers', 'create', '--name', `s${i}`], env);
    startRow('`opensigma servers list` (10 servers), process start to exit', timed(process.execPath, [BIN, 'servers', 'list'], env, n));

    const size = quick ? 256 * 2 ** 20 : 2 ** 30;
    const label = quick ? '256 MiB' : '1 GiB';
    const file = path.join(work, 'disk.raw');
    // Random bytes: nothing on the way may shrink them.
    const fd = fs.openSync(file, 'w');
    const block = Buffer.alloc(2 ** 24);
    for (let done = 0; done < size; done += block.length) fs.writeSync(fd, fillRandom(block));
    fs.closeSync(fd);
    const mibs = (s: number) => size / 2 ** 20 / s;
    const rateRow = (name: string, s: number, curl: number) =>
      rows.push({ name, value: `${mibs(s).toFixed(0)} MiB/s`, baseline: `curl: ${mibs(curl).toFixed(0)} MiB/s`, ratio: (mibs(s) / mibs(curl)).toFixed(2) });
    const basic = `${EMAIL}:${PASSWORD}`;

    say(`upload ${label}: curl, then opensigma drives upload`);
    const curlUp = timed('curl', [
      '-sf',
      '-o',
      '/dev/null',
      '-u',
      basic,
      '-H',
      'content-type: application/octet-stream',
      '-T',
      file,
      `${os1.url}/drives/upload/`,
    ]);
    const cliUp = timed(process.execPath, [BIN, 'drives', 'upload', file, '--name', 'up'], env);
    rateRow(`\`opensigma drives upload\` ${label} (resumable, 5 MiB chunks)`, cliUp, curlUp);

    say(`download ${label}: curl, then opensigma drives download`);
    const list = JSON.parse(
      spawnSync(process.execPath, [BIN, 'drives', 'list', '--name', 'up', '-o', 'json'], { env: { ...process.env, ...env } }).stdout.toString(),
    );
    const uuid = (list.objects ?? list)[0].uuid as string;
    const curlDown = timed('curl', ['-sf', '-o', path.join(work, 'curl.raw'), '-u', basic, `${os1.url}/drives/${uuid}/download/`]);
    const cliDown = timed(process.execPath, [BIN, 'drives', 'download', uuid, path.join(work, 'cli.raw')], env);
    if (fs.statSync(path.join(work, 'cli.raw')).size !== size) throw new Error('the download is short');
    rateRow(`\`opensigma drives download\` ${label}`, cliDown, curlDown);
  } finally {
    await os1.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

function fillRandom(b: Buffer): Buffer {
  for (let i = 0; i < b.length; i += 65536) globalThis.crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

export function printCliTable(rows: CliRow[]): void {
  const out = ['', '### The opensigma command (bench/cli.ts)', '', '| row | figure | baseline, same run | ratio |', '|---|---:|---|---:|'];
  for (const r of rows) out.push(`| ${r.name} | ${r.value} | ${r.baseline} | ${r.ratio} |`);
  process.stdout.write(out.join('\n') + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) printCliTable(await runCliBench(process.argv.includes('--quick')));
