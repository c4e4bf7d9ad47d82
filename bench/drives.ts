import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Json } from '../src/cli/http.ts';

/**
 * Drive storage figures: upload and download of a 1 GiB drive through the API (curl as the client) beside `cp` of
 * the same file in the same run, clone time of a 10 GiB sparse drive, and the server's peak RSS during the upload.
 * The server runs as its own process, so its memory is measured apart from the benchmark's. Beside them: what curl
 * reaches with no API in the way (a bare Node server, a socket that discards an upload), and how busy curl was.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GiB = 1024 ** 3;
const USER = 'bench@example.com';
const PASS = 'bench-password';
const ROUNDS = 3;

export interface BenchRow {
  metric: string;
  value: string;
  goal: string;
  ok: boolean | null;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuOf(pid: number): number {
  const fields = fs
    .readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: clock ticks of 1/100 s on Linux
}

/** CPU seconds used by this process's finished children (cutime + cstime): the client's share of a transfer. */
function childrenCpu(): number {
  const fields = fs
    .readFileSync('/proc/self/stat', 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Keeps, per figure, the fastest round and the client CPU it took. */
class Best {
  s = Infinity;
  clientCpu = 0;
  take(s: number, clientCpu: number): void {
    if (s < this.s) [this.s, this.clientCpu] = [s, clientCpu];
  }
  /** how busy the client was: near 100%, the client itself sets the pace */
  get clientBusy(): string {
    return `${((this.clientCpu / this.s) * 100).toFixed(0)}%`;
  }
}

/** Each timed step starts with no dirty pages, so none pays for the write-back of the one before. */
function timed(cmd: string, args: string[], best?: Best): number {
  execFileSync('sync');
  const c0 = childrenCpu();
  const t0 = performance.now();
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const s = (performance.now() - t0) / 1000;
  best?.take(s, childrenCpu() - c0);
  return s;
}

async function until<T>(fn: () => Promise<T | null>, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function startServer(dataDir: string): Promise<{ proc: ChildProcess; api: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/opensigma.js'), 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_LISTEN: `127.0.0.1:${port}`,
      OPENSIGMA_ADMIN_EMAIL: USER,
      OPENSIGMA_ADMIN_PASSWORD: PASS,
      OPENSIGMA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok ?? null, 60000, 'the server to start', 100);
  return { proc, api: `${base}/api/2.0` };
}

/** A bare Node HTTP server that only writes a POST body to a file and streams it back on GET: the floor of any API. */
const BARE = `
const http = require('node:http'), fs = require('node:fs'), { pipeline } = require('node:stream/promises');
const file = process.argv[1];
http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST') { await pipeline(req, fs.createWriteStream(file, { highWaterMark: 1 << 20 })); return res.end('ok'); }
    res.writeHead(200, { 'content-length': fs.statSync(file).size });
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), res);
  } catch (e) { process.stderr.write('bare: ' + req.method + ' ' + e.message + '\\n'); res.destroy(); }
}).listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('ready'));
`;

/**
 * Not an HTTP server: a socket that reads a request's headers, throws its body away as it comes and answers 200.
 * curl uploading into it measures curl and the loopback alone, the most that any server could get from curl.
 */
const SINK = `
const net = require('node:net');
net.createServer((sock) => {
  let head = Buffer.alloc(0), left = -1;
  sock.on('data', (chunk) => {
    if (left < 0) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\\r\\n\\r\\n');
      if (end < 0) return;
      const m = /content-length: *(\\d+)/i.exec(head.subarray(0, end).toString('latin1'));
      left = Number(m ? m[1] : 0) - (head.length - end - 4);
    } else left -= chunk.length;
    if (left <= 0) sock.end('HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok');
  });
  sock.on('error', () => {});
}).listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready'));
`;

async function startBare(file: string, script = BARE): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['-e', script, ...(script === BARE ? [file] : []), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => proc.stdout!.once('data', r));
  return { proc, url: `http://127.0.0.1:${port}/` };
}

export async function runDriveBench(): Promise<BenchRow[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-'));
  const dataDir = path.join(work, 'data');
  const { proc, api } = await startServer(dataDir);
  const auth = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
  const call = async (method: string, p: string, body?: unknown) => {
    const r = await fetch(`${api}${p}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json().catch(() => null)) as Json };
  };
  const statusOf = async (uuid: string, status: string) => ((await call('GET', `/drives/${uuid}/`)).body?.status === status ? true : null);
  const rows: BenchRow[] = [];
  try {
    // 1 GiB of random bytes on the same file system as the data dir
    const src = path.join(work, 'image.raw');
    execFileSync('head', ['-c', String(GiB), '/dev/urandom'], { stdio: ['ignore', fs.openSync(src, 'w'), 'inherit'] });
    execFileSync('sync');
    const mbps = (s: number) => GiB / 1e6 / s;
    const rssBefore = rssOf(proc.pid!);
    let peak = rssBefore;
    // The machine may be shared: each figure is the best of ROUNDS, cp measured in the same rounds.
    let cpS = Infinity;
    const up = new Best();
    const down = new Best();
    const downNull = new Best();
    const bareUp = new Best();
    const bareDown = new Best();
    const sinkUp = new Best();
    let upCpu = Infinity;
    let downCpu = Infinity;
    const load0 = os.loadavg()[0]!;
    const bare = await startBare(path.join(work, 'bare.raw'));
    const sink = await startBare('', SINK);
    for (let round = 0; round < ROUNDS; round++) {
      cpS = Math.min(cpS, timed('cp', ['--sparse=never', src, path.join(work, 'copy.raw')]));
      fs.rmSync(path.join(work, 'copy.raw'));

      // upload through the API while sampling the server's RSS (curl runs asynchronously, so the sampler gets to run)
      execFileSync('sync');
      const sampler = setInterval(() => (peak = Math.max(peak, rssOf(proc.pid!))), 20);
      const c0 = cpuOf(proc.pid!);
      const k0 = childrenCpu();
      const t0 = performance.now();
      const { stdout: out } = await promisify(execFile)(
        'curl',
        ['-sS', '-f', '-X', 'POST', '-u', `${USER}:${PASS}`, '-H', 'Content-Type: application/octet-stream', '-T', src, `${api}/drives/upload/`],
        { encoding: 'utf8' },
      );
      up.take((performance.now() - t0) / 1000, childrenCpu() - k0);
      upCpu = Math.min(upCpu, cpuOf(proc.pid!) - c0);
      clearInterval(sampler);
      peak = Math.max(peak, rssOf(proc.pid!));
      const uuid = out.trim();
      await until(() => statusOf(uuid, 'unmounted'), 60000, 'the upload to finish');

      const dst = path.join(work, 'download.raw');
      const c1 = cpuOf(proc.pid!);
      timed('curl', ['-sS', '-f', '-u', `${USER}:${PASS}`, '-o', dst, `${api}/drives/${uuid}/download/`], down);
      downCpu = Math.min(downCpu, cpuOf(proc.pid!) - c1);
      const same = execFileSync('cmp', ['-n', String(GiB), src, dst], { encoding: 'utf8' }) === '';
      fs.rmSync(dst);
      if (!same) throw new Error('downloaded bytes differ from the uploaded ones');
      timed('curl', ['-sS', '-f', '-u', `${USER}:${PASS}`, '-o', '/dev/null', `${api}/drives/${uuid}/download/`], downNull);
      await call('DELETE', `/drives/${uuid}/`);

      timed('curl', ['-sS', '-f', '-X', 'POST', '-T', src, '-o', '/dev/null', bare.url], bareUp);
      timed('curl', ['-sS', '-f', '-o', dst, bare.url], bareDown);
      fs.rmSync(dst);
      // the sink does not answer "100 Continue", which curl would wait a second for
      timed('curl', ['-sS', '-f', '-X', 'POST', '-H', 'Expect:', '-T', src, '-o', '/dev/null', sink.url], sinkUp);
    }
    sink.proc.kill();
    bare.proc.kill();

    // clone of a 10 GiB sparse drive holding 64 MiB of data
    const c = await call('POST', '/drives/', { name: 'sparse10', media: 'disk', size: 10 * GiB });
    const sparse = c.body.objects[0].uuid as string;
    await until(() => statusOf(sparse, 'unmounted'), 60000, 'the drive to be created');
    const fd = fs.openSync(path.join(dataDir, 'drives', `${sparse}.img`), 'r+');
    const chunk = fs.readFileSync(src).subarray(0, 64 * 1024 * 1024);
    fs.writeSync(fd, chunk, 0, chunk.length, 5 * GiB);
    fs.closeSync(fd);
    execFileSync('sync'); // measure the clone, not the write-back of what was just written
    const t1 = performance.now();
    const cl = await call('POST', `/drives/${sparse}/action/?do=clone`, { name: 'sparse10-clone' });
    await until(() => statusOf(cl.body.objects[0].uuid, 'unmounted'), 60000, 'the clone to finish', 5);
    const cloneS = (performance.now() - t1) / 1000;

    rows.push({
      metric: 'load average (1 min) at the start / end of the drive figures',
      value: `${load0.toFixed(2)} / ${os.loadavg()[0]!.toFixed(2)} (${os.cpus().length} cores)`,
      goal: '',
      ok: null,
    });
    rows.push({ metric: `cp of the 1 GiB file (baseline; best of ${ROUNDS} for each row)`, value: `${mbps(cpS).toFixed(0)} MB/s`, goal: '', ok: null });
    const pct = (s: number, base: number) => `${((base / s) * 100).toFixed(0)}%`;
    rows.push({
      metric: 'bare Node HTTP server: POST to a file / GET of it (floor)',
      value: `${mbps(bareUp.s).toFixed(0)} / ${mbps(bareDown.s).toFixed(0)} MB/s`,
      goal: '',
      ok: null,
    });
    // The client's CPU beside each transfer: curl near 100% busy is what sets the pace, whatever the server does.
    rows.push({
      metric: 'curl uploading into a socket that discards the bytes (no server, no file: the ceiling)',
      value: `${mbps(sinkUp.s).toFixed(0)} MB/s (${pct(sinkUp.s, cpS)} of cp; curl ${sinkUp.clientBusy} busy)`,
      goal: '',
      ok: null,
    });
    rows.push({
      metric: 'upload 1 GiB (POST /drives/upload/)',
      value: `${mbps(up.s).toFixed(0)} MB/s (${pct(up.s, cpS)} of cp, ${pct(up.s, bareUp.s)} of bare, ${pct(up.s, sinkUp.s)} of the ceiling; server CPU ${upCpu.toFixed(2)} s, curl ${up.clientBusy} busy)`,
      goal: '>= 50% of cp',
      ok: cpS / up.s >= 0.5,
    });
    rows.push({
      metric: 'download 1 GiB (GET /drives/{uuid}/download/)',
      value: `${mbps(down.s).toFixed(0)} MB/s (${pct(down.s, cpS)} of cp, ${pct(down.s, bareDown.s)} of bare; server CPU ${downCpu.toFixed(2)} s, curl ${down.clientBusy} busy)`,
      goal: '>= 50% of cp',
      ok: cpS / down.s >= 0.5,
    });
    // curl writes its file through stdio in pieces of 4 to 16 KiB (about 136,000 writes a GiB): without the file,
    // what is left is what the server and the loopback deliver.
    rows.push({
      metric: 'download 1 GiB with curl writing no file (-o /dev/null)',
      value: `${mbps(downNull.s).toFixed(0)} MB/s (${pct(downNull.s, cpS)} of cp; curl ${downNull.clientBusy} busy)`,
      goal: '',
      ok: null,
    });
    rows.push({ metric: 'clone of a 10 GiB sparse drive holding 64 MiB (POST to unmounted)', value: `${cloneS.toFixed(3)} s`, goal: '< 1 s', ok: cloneS < 1 });
    rows.push({
      metric: 'peak RSS of the opensigma server process during the 1 GiB upload',
      value: `${(peak / 2 ** 20).toFixed(0)} MB (idle ${(rssBefore / 2 ** 20).toFixed(0)} MB)`,
      goal: '< 150 MB',
      ok: peak < 150 * 2 ** 20,
    });
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

export function printTable(title: string, rows: BenchRow[]): void {
  const w = [Math.max(6, ...rows.map((r) => r.metric.length)), Math.max(5, ...rows.map((r) => r.value.length)), Math.max(4, ...rows.map((r) => r.goal.length))];
  const line = (a: string, b: string, c: string, d: string) => `| ${a.padEnd(w[0]!)} | ${b.padEnd(w[1]!)} | ${c.padEnd(w[2]!)} | ${d.padEnd(4)} |`;
  console.log(`\n${title}\n`);
  console.log(line('metric', 'value', 'goal', 'met'));
  console.log(`|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|${'-'.repeat(w[2]! + 2)}|------|`);
  for (const r of rows) console.log(line(r.metric, r.value, r.goal, r.ok === null ? '' : r.ok ? 'yes' : 'NO'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printTable('Drive storage', await runDriveBench());
}
