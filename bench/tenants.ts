/**
 * Tenants cannot harm each other (`npm run bench -- --tenants` alone, or in the default run): the worst latency of
 * GET /healthz from a second client while one tenant sends the largest allowed batch (100 objects) of generated
 * keypairs, tags and ACLs, beside the same with no batch running; the success rate of a normal client while 5,000
 * anonymous slow connections are held open (from a child process, bench/slow-clients.ts), beside the same with none;
 * and how many password guesses per second one source gets on the console, on VNC and with HTTP Basic, beside the
 * rate of right passwords from another source. opensigma runs as its own process (sim driver, SQLite).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/index.ts';
import { startOpensigma, type Proc } from './processes.ts';
import type { BenchRow } from './drives.ts';
import { SocketReader } from '../test/helpers/socket-reader.ts';
import { vncAuthAnswer } from '../test/helpers/vnc-auth.ts';
import { CONSOLE_THROTTLE } from '../src/domain/guess-throttle.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password';
const GRANTEE = 'grantee@example.com';
const BATCH = 100; // MAX_OBJECTS_PER_REQUEST: the largest batch the API accepts
const SLOW = 5000;
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  body: string;
}

/** One HTTP request; `agent` false opens a connection of its own, as a new client does. */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent | false; localAddress?: string; timeoutMs?: number },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent, localAddress: opts.localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** GET /healthz one after another on one kept-alive connection until `done` settles; the worst and the median, in ms. */
async function probe(base: string, done: Promise<unknown>): Promise<{ worst: number; p50: number; p99: number; n: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let finished = false;
  void done.finally(() => (finished = true));
  const times: number[] = [];
  while (!finished) {
    const t0 = performance.now();
    const a = await request(`${base}/healthz`, { agent });
    if (a.status !== 200) throw new Error(`healthz answered ${a.status}`);
    times.push(performance.now() - t0);
    await sleep(2); // a monitoring client, not a load generator
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
  return { worst: times[times.length - 1] ?? NaN, p50: at(0.5), p99: at(0.99), n: times.length };
}

async function batchRows(p: Proc, rounds: number): Promise<BenchRow[]> {
  const base = new URL(p.url).origin;
  const headers = { authorization: basic(EMAIL, PASSWORD), 'content-type': 'application/json' };
  const post = async (what: string, objects: unknown[]) => {
    const a = await request(`${p.url}/${what}/`, { method: 'POST', headers, body: JSON.stringify({ objects }), timeoutMs: 900_000, agent: false });
    if (a.status !== 201) throw new Error(`POST /${what}/ answered ${a.status}: ${a.body.slice(0, 300)}`);
    return JSON.parse(a.body).objects as Array<{ uuid: string }>;
  };
  const tag = (await post('tags', [{ name: 'shared' }]))[0]!.uuid;
  const kinds: Array<[string, () => unknown[]]> = [
    ['generated RSA keypairs', () => Array.from({ length: BATCH }, (_, i) => ({ name: `k${i}` }))],
    ['tags', () => Array.from({ length: BATCH }, (_, i) => ({ name: `t${i}` }))],
    ['ACLs', () => Array.from({ length: BATCH }, (_, i) => ({ name: `a${i}`, grantees: [{ email: GRANTEE }], rules: [{ permission: 'LIST' }], tags: [tag] }))],
  ];
  say('GET /healthz with no batch running');
  const idle = await probe(base, sleep(rounds * 2000));
  const rows: BenchRow[] = [
    {
      metric: 'GET /healthz worst latency, no batch running (baseline)',
      value: `${idle.worst.toFixed(1)} ms (p99 ${idle.p99.toFixed(1)}, p50 ${idle.p50.toFixed(2)} ms, ${idle.n} requests)`,
      goal: '',
      ok: null,
    },
  ];
  for (const [name, objects] of kinds) {
    say(`GET /healthz while ${rounds} batches of ${BATCH} ${name} are created`);
    const took: number[] = [];
    const work = (async () => {
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await post(name === 'tags' ? 'tags' : name === 'ACLs' ? 'acls' : 'keypairs', objects());
        took.push(performance.now() - t0);
      }
    })();
    const r = await probe(base, work);
    await work;
    rows.push({
      metric: `GET /healthz worst latency while POSTing ${BATCH} ${name}`,
      value: `${r.worst.toFixed(1)} ms (${(r.worst / idle.worst).toFixed(1)}x baseline; p99 ${r.p99.toFixed(1)}, p50 ${r.p50.toFixed(2)} ms; a batch took ${Math.max(...took).toFixed(0)} ms)`,
      goal: '< 100 ms',
      ok: r.worst < 100,
    });
  }
  return rows;
}

/** `count` requests of a normal client, each on a new connection (as a new client's): how many got their 200. */
async function normalClient(p: Proc, count: number): Promise<{ ok: number; total: number; worst: number; p50: number }> {
  let ok = 0;
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      const a = await request(`${p.url}/servers/`, { headers: { authorization: basic(EMAIL, PASSWORD) }, agent: false, timeoutMs: 30_000 });
      if (a.status === 200) ok++;
    } catch {
      // refused, reset or timed out: a failure
    }
    times.push(performance.now() - t0);
    await sleep(50);
  }
  times.sort((a, b) => a - b);
  return { ok, total: count, worst: times[times.length - 1]!, p50: times[Math.floor(times.length / 2)]! };
}

async function slowRows(p: Proc, requests: number): Promise<BenchRow[]> {
  say('a normal client with no slow connections open');
  const calm = await normalClient(p, requests);
  say(`a normal client while ${SLOW} anonymous slow connections are held open`);
  // Its own process, so the attacker's descriptors and event loop are not the bench's.
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/slow-clients.ts', new URL(p.url).origin, String(SLOW)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let report = '';
  child.stdout!.on('data', (d) => (report += d));
  const lastReport = () => JSON.parse(report.trim().split('\n').pop() || '{}') as { open?: number; opened?: number; closedByServer?: number; errors?: number };
  try {
    const deadline = Date.now() + 60_000;
    while ((lastReport().opened ?? 0) < SLOW && Date.now() < deadline) await sleep(200);
    const before = lastReport();
    const under = await normalClient(p, requests);
    const after = lastReport();
    const rate = (r: { ok: number; total: number }) => (100 * r.ok) / Math.max(1, r.total);
    return [
      {
        metric: 'normal client success rate, no slow connections (baseline)',
        value: `${rate(calm).toFixed(1)}% of ${calm.total} (p50 ${calm.p50.toFixed(0)} ms, worst ${calm.worst.toFixed(0)} ms)`,
        goal: '',
        ok: null,
      },
      {
        metric: `normal client success rate, ${SLOW} anonymous slow connections`,
        value:
          `${rate(under).toFixed(1)}% of ${under.total} (p50 ${under.p50.toFixed(0)} ms, worst ${under.worst.toFixed(0)} ms; attacker held ${after.open} open, ` +
          `the server closed ${(after.closedByServer ?? 0) - (before.closedByServer ?? 0)} of its connections meanwhile)`,
        goal: '100%',
        ok: under.ok === under.total,
      },
    ];
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

/** One console login; true when the password was checked and refused (a guess the attacker got an answer to). */
async function consoleTry(url: string, password: string, from: string): Promise<'in' | 'wrong' | 'refused'> {
  const c = await SocketReader.connect(url.replace(/^csconsole:/, 'tcp:'), from);
  try {
    await c.readUntil('Password:');
    c.write(`${password}\r\n`);
    if (password === 'sesame12') return (await c.readUntil('Connected to the serial console', 20_000).catch(() => '')) ? 'in' : 'refused';
    const out = await c.readToEnd(60_000).catch(() => '');
    // "Too many wrong passwords from …" is a refusal: the password was not checked.
    return /^\s*Wrong password/m.test(out) ? 'wrong' : 'refused';
  } finally {
    c.close();
  }
}

async function vncTry(url: string, password: string, from: string): Promise<'in' | 'wrong' | 'refused'> {
  const rfb = await SocketReader.connect(url.replace(/^vnc:/, 'tcp:'), from);
  try {
    await rfb.read(12);
    rfb.write('RFB 003.008\n');
    const n = (await rfb.read(1))[0]!;
    if (n === 0) return 'refused';
    await rfb.read(n);
    rfb.write(Buffer.from([2]));
    const challenge = await rfb.read(16);
    rfb.write(vncAuthAnswer(password, challenge));
    const result = (await rfb.read(4, 60_000)).readUInt32BE(0);
    if (result === 0) return 'in';
    // RFB 3.8 says why: a wrong password, or "Too many wrong passwords" (not checked at all).
    const reason = (await rfb.read((await rfb.read(4)).readUInt32BE(0))).toString('latin1');
    return /wrong password$/.test(reason) ? 'wrong' : 'refused';
  } catch {
    return 'refused';
  } finally {
    rfb.close();
  }
}

async function basicTry(p: Proc, password: string, from: string): Promise<'in' | 'wrong' | 'refused'> {
  const a = await request(`${p.url}/servers/`, { headers: { authorization: basic(EMAIL, password) }, agent: false, localAddress: from });
  return a.status === 200 ? 'in' : a.status === 401 ? 'wrong' : 'refused';
}

/** `parallel` attempts at a time from one source for `seconds`: answers per second (checked passwords only). */
async function attempts(
  seconds: number,
  parallel: number,
  one: () => Promise<'in' | 'wrong' | 'refused'>,
): Promise<{ answered: number; refused: number; elapsedS: number }> {
  const start = Date.now();
  const end = start + seconds * 1000;
  let answered = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < end) {
        const r = await one().catch(() => 'refused' as const);
        if (r === 'refused') {
          refused++;
          await sleep(10);
        } else answered++;
      }
    }),
  );
  // Attempts admitted before the end but made to wait are answered after it: the rate is over the time they took.
  return { answered, refused, elapsedS: (Date.now() - start) / 1000 };
}

async function guessRows(p: Proc, seconds: number): Promise<BenchRow[]> {
  const headers = { authorization: basic(EMAIL, PASSWORD), 'content-type': 'application/json' };
  const made = await request(`${p.url}/servers/`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'console', cpu: 1000, mem: 536870912, vnc_password: 'sesame12' }),
  });
  const uuid = JSON.parse(made.body).objects[0].uuid as string;
  await request(`${p.url}/servers/${uuid}/action/?do=start`, { method: 'POST', headers });
  for (let i = 0; i < 100; i++) {
    if (JSON.parse((await request(`${p.url}/servers/${uuid}/`, { headers })).body).status === 'running') break;
    await sleep(100);
  }
  const consoleUrl = JSON.parse((await request(`${p.url}/servers/${uuid}/action/?do=open_console`, { method: 'POST', headers })).body).console_url as string;
  const vncUrl = JSON.parse((await request(`${p.url}/servers/${uuid}/action/?do=open_vnc`, { method: 'POST', headers })).body).vnc_url as string;
  const free = CONSOLE_THROTTLE.free;
  const channels: Array<[string, (pw: string, from: string) => Promise<'in' | 'wrong' | 'refused'>, number]> = [
    ['console', (pw, from) => consoleTry(consoleUrl, pw, from), free],
    ['VNC', (pw, from) => vncTry(vncUrl, pw, from), free],
    ['HTTP Basic', (pw, from) => basicTry(p, pw, from), 10], // OPENSIGMA_LOGIN_FAILURES_PER_SOURCE's default
  ];
  const rows: BenchRow[] = [];
  for (const [i, [name, one, freeGuesses]] of channels.entries()) {
    say(`${name}: right passwords from one source, then wrong ones from another, 8 at a time`);
    // The console has one slot, so its right-password logins go one at a time.
    const right = await attempts(3, name === 'console' ? 1 : 8, () => one('sesame12', `127.0.2.${i + 1}`));
    const wrong = await attempts(seconds, 8, () => one(name === 'HTTP Basic' ? 'wrong-password' : 'badbadba', `127.0.1.${i + 1}`));
    const after = Math.max(0, wrong.answered - freeGuesses) / wrong.elapsedS;
    rows.push({
      metric: `${name}: right passwords/s, one source at a time (baseline)`,
      value: `${(right.answered / right.elapsedS).toFixed(1)}/s`,
      goal: '',
      ok: null,
    });
    rows.push({
      metric: `${name}: guesses/s one source gets after the first ${freeGuesses}`,
      value: `${after.toFixed(2)}/s (${wrong.answered} answered, ${wrong.refused} refused in ${wrong.elapsedS.toFixed(1)} s)`,
      goal: '< 1/s',
      ok: after < 1,
    });
  }
  return rows;
}

export async function runTenantBench(quick: boolean): Promise<BenchRow[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-tenants-'));
  const store = await Store.open(null, dataDir);
  try {
    await store.users.create(EMAIL, PASSWORD);
    await store.users.create(GRANTEE, 'grantee-password');
  } finally {
    await store.close();
  }
  const env: Record<string, string> = {
    OPENSIGMA_ADMIN_EMAIL: EMAIL,
    OPENSIGMA_ADMIN_PASSWORD: PASSWORD,
    OPENSIGMA_SIM_DELAY_MS: '0',
    OPENSIGMA_LOG_LEVEL: 'warn',
    OPENSIGMA_RATE_GET: '1000000000',
    OPENSIGMA_RATE_POST: '1000000000',
  };
  const p = await startOpensigma(dataDir, env);
  try {
    const rows = await batchRows(p, quick ? 1 : 3);
    rows.push(...(await slowRows(p, quick ? 10 : 30)));
    rows.push(...(await guessRows(p, quick ? 10 : 30)));
    rows.push({ metric: `load average at the end (${os.cpus().length} CPUs)`, value: os.loadavg()[0]!.toFixed(1), goal: '', ok: null });
    return rows;
  } finally {
    await p.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
