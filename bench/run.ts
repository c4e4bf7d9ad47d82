/**
 * npm run bench [-- --quick]: wrk (Debian's package) against a real opensigma process (sim driver, SQLite) holding 10,000 servers,
 * beside a bare Fastify hello-world measured in the same run; then the list at 100,000 servers and the control-plane
 * overhead of a start. Prints a markdown table.
 */
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { seedServers } from './seed.ts';
import { startBaseline, startOpensigma } from './processes.ts';
import { load, type LoadResult } from './load.ts';
import { controlPlaneOverhead } from './control-plane.ts';
import { printTable, runDriveBench } from './drives.ts';
import { runPostgresBench } from './postgres.ts';
import { benchWeb, printWebTable } from './web.ts';
import { runTenantBench } from './tenants.ts';
import { runMultinodeBench } from './multinode.ts';

const quick = process.argv.includes('--quick');
const DURATION = quick ? 3 : 10;
const SMALL = 10_000;
const BIG = 100_000;
const STARTS = quick ? 50 : 200;
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password';
const AUTH = { authorization: `Basic ${Buffer.from(`${EMAIL}:${PASSWORD}`).toString('base64')}` };

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);

interface Row {
  name: string;
  r: LoadResult;
  note?: string;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  say('baseline: bare Fastify hello-world');
  const base = await startBaseline();
  const baseline = await load({ url: base.url, durationS: DURATION }, base.cpuSeconds);
  await base.stop();

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-'));
  try {
    say(`seeding ${SMALL} servers`);
    let t = performance.now();
    const uuids = await seedServers(dataDir, EMAIL, PASSWORD, SMALL);
    say(`seeded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    // Request logging off (warn): it is configuration, and at info it costs about as much as the request itself.
    // Rate limits lifted: at CloudSigma's 10,000 GETs a minute the rows would measure 429 answers, not the API.
    const unlimited = {
      OPENSIGMA_RATE_GET: '1000000000',
      OPENSIGMA_RATE_POST: '1000000000',
      OPENSIGMA_RATE_PUT: '1000000000',
      OPENSIGMA_RATE_DELETE: '1000000000',
      OPENSIGMA_QUOTA_SERVERS: '0',
    };
    const env = { OPENSIGMA_ADMIN_EMAIL: EMAIL, OPENSIGMA_ADMIN_PASSWORD: PASSWORD, OPENSIGMA_SIM_DELAY_MS: '0', OPENSIGMA_LOG_LEVEL: 'warn', ...unlimited };
    let os1 = await startOpensigma(dataDir, env);
    const api = new URL(os1.url).pathname;

    // What the request pipeline (routing, request id, logging, compression negotiation, hooks) costs on its own: a
    // small answer that reads nothing. The GET of a server can only be as fast as this.
    say('GET /locations/');
    rows.push({
      name: 'GET /locations/ (reads nothing, no auth: the request pipeline alone)',
      r: await load({ url: `${os1.url}/locations/`, durationS: DURATION }, os1.cpuSeconds),
    });
    say('GET /servers/{uuid}/');
    rows.push({
      name: 'GET /servers/{uuid}/',
      r: await load({ url: os1.url, durationS: DURATION, headers: AUTH, requests: [{ method: 'GET', path: `${api}/servers/{uuid}/` }], uuids }, os1.cpuSeconds),
    });
    say('GET /servers/detail/?limit=100');
    const list10k = await load({ url: `${os1.url}/servers/detail/?limit=100`, durationS: DURATION, headers: AUTH }, os1.cpuSeconds);
    rows.push({ name: `GET /servers/detail/?limit=100 (${SMALL / 1000}k servers)`, r: list10k });
    // With 50 connections a saturated single-threaded server queues each request behind the others, so that p99 is
    // many service times; one connection shows the latency of the request itself.
    const list10kOne = await load({ url: `${os1.url}/servers/detail/?limit=100`, durationS: DURATION, headers: AUTH, connections: 1 }, os1.cpuSeconds);
    rows.push({ name: `GET /servers/detail/?limit=100 (${SMALL / 1000}k servers), 1 connection`, r: list10kOne });
    say('POST /servers/');
    const one = JSON.stringify({ name: 'bench-new', cpu: 1000, mem: 536870912, vnc_password: 'benchpass' });
    rows.push({
      name: 'POST /servers/ (one)',
      r: await load({ url: os1.url, durationS: DURATION, headers: AUTH, requests: [{ method: 'POST', path: `${api}/servers/`, body: one }] }, os1.cpuSeconds),
    });
    say('POST start+stop pairs');
    // Each turn starts, then stops, a server of the thread's own; the turns go round 50 servers.
    const pairs = await load(
      {
        url: os1.url,
        durationS: DURATION,
        headers: AUTH,
        requests: [
          { method: 'POST', path: `${api}/servers/{uuid}/action/?do=start` },
          { method: 'POST', path: `${api}/servers/{uuid}/action/?do=stop` },
        ],
        uuids: uuids.slice(0, 50),
        own: true,
      },
      os1.cpuSeconds,
    );
    rows.push({
      name: 'POST start+stop pairs',
      r: pairs,
      note: `${(100 - (100 * pairs.non2xx) / Math.max(1, pairs.total)).toFixed(0)}% accepted, the rest 403 (not yet stopped)`,
    });
    await os1.stop();

    // The rows above reuse each server's serialised answer; this one renders every server of every page anew.
    say('GET /servers/detail/?limit=100 without the wire cache');
    os1 = await startOpensigma(dataDir, { ...env, OPENSIGMA_WIRE_CACHE_MB: '0' });
    const uncached = await load({ url: `${os1.url}/servers/detail/?limit=100`, durationS: DURATION, headers: AUTH }, os1.cpuSeconds);
    rows.push({ name: `GET /servers/detail/?limit=100 (${SMALL / 1000}k servers), wire cache off`, r: uncached });
    await os1.stop();

    say(`seeding up to ${BIG} servers`);
    t = performance.now();
    await seedServers(dataDir, EMAIL, PASSWORD, BIG - SMALL);
    say(`seeded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    os1 = await startOpensigma(dataDir, env);
    say('GET /servers/detail/?limit=100 at 100k');
    const list100k = await load({ url: `${os1.url}/servers/detail/?limit=100`, durationS: DURATION, headers: AUTH }, os1.cpuSeconds);
    rows.push({ name: `GET /servers/detail/?limit=100 (${BIG / 1000}k servers)`, r: list100k });
    await os1.stop();

    say(`control-plane overhead over ${STARTS} starts`);
    const cp = await controlPlaneOverhead(STARTS);

    const out: string[] = [];
    out.push(`| row | req/s | p99 ms | ratio to baseline req/s | server CPU ms/req | ratio by CPU | note |`);
    out.push(`|---|---:|---:|---:|---:|---:|---|`);
    out.push(
      `| baseline: bare Fastify hello-world | ${baseline.reqPerSec.toFixed(0)} | ${ms(baseline.p99)} | 1.00 | ${baseline.cpuMsPerReq.toFixed(3)} | 1.00 | |`,
    );
    for (const row of rows)
      out.push(
        `| ${row.name} | ${row.r.reqPerSec.toFixed(0)} | ${ms(row.r.p99)} | ${(row.r.reqPerSec / baseline.reqPerSec).toFixed(2)} | ${row.r.cpuMsPerReq.toFixed(3)} | ${(baseline.cpuMsPerReq / row.r.cpuMsPerReq).toFixed(2)} | ${row.note ?? (row.r.non2xx ? `${row.r.non2xx} non-2xx` : '')} |`,
      );
    out.push('');
    out.push(`control-plane overhead, start -> running (sim, OPENSIGMA_SIM_DELAY_MS=0, ${STARTS} starts): p50 ${ms(cp.p50)} ms, p99 ${ms(cp.p99)} ms`);
    out.push('');
    const getOne = rows.find((r) => r.name === 'GET /servers/{uuid}/')!.r;
    const pipeline = rows.find((r) => r.name.startsWith('GET /locations/'))!.r;
    const goals: Array<[string, boolean]> = [
      [`GET one server >= 50% of baseline req/s (${((100 * getOne.reqPerSec) / baseline.reqPerSec).toFixed(0)}%)`, getOne.reqPerSec >= baseline.reqPerSec / 2],
      [
        `GET /locations/ (the pipeline alone) >= 85% of baseline req/s (${((100 * pipeline.reqPerSec) / baseline.reqPerSec).toFixed(0)}%)`,
        pipeline.reqPerSec >= baseline.reqPerSec * 0.85,
      ],
      [`list of 100 p99 <= 25 ms at 50 connections (${ms(list10k.p99)} ms)`, list10k.p99 <= 25],
      [`list of 100 p99 <= 25 ms at 1 connection (${ms(list10kOne.p99)} ms)`, list10kOne.p99 <= 25],
      [
        `list p99 at 100k within 20% (or 2 ms) of 10k (${ms(list100k.p99)} vs ${ms(list10k.p99)} ms)`,
        list100k.p99 <= Math.max(list10k.p99 * 1.2, list10k.p99 + 2),
      ],
      [`control-plane overhead p99 < 20 ms (${ms(cp.p99)} ms)`, cp.p99 < 20],
    ];
    for (const [what, ok] of goals) out.push(`- ${ok ? 'met' : 'MISSED'}: ${what}`);
    out.push('');
    out.push(
      `(${quick ? 'quick: ' : ''}${DURATION} s per row after a warm-up, 50 connections (wrk, 2 threads) unless the row says otherwise, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}; ` +
        'ratio by CPU = baseline CPU per request / row CPU per request: the req/s ratio on otherwise idle cores)',
    );
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// `npm run bench -- --drives` runs only the drive storage figures (bench/drives.ts); `-- --servers` only the API figures;
// `-- --web` only the web console's (bench/web.ts, in Chromium).
if (process.argv.includes('--web')) {
  printWebTable(await benchWeb(quick ? 3 : 10));
  process.exit(0);
}
// `npm run bench -- --tenants` runs only the figures of tenants who must not harm each other (bench/tenants.ts).
if (process.argv.includes('--tenants')) {
  printTable('Tenants cannot harm each other (bench/tenants.ts)', await runTenantBench(quick));
  process.exit(0);
}
// `npm run bench -- --multinode` runs only the multi-node figures (bench/multinode.ts).
if (process.argv.includes('--multinode')) {
  await runMultinodeBench();
  process.exit(0);
}
// `-- --cli` runs only the opensigma command's figures and saved states (bench/cli.ts, bench/states.ts).
if (process.argv.includes('--cli')) {
  await cliSection();
  process.exit(0);
}
if (!process.argv.includes('--drives')) await main();
if (process.argv.includes('--servers')) process.exit(0);
printWebTable(await benchWeb(quick ? 3 : 10));
printTable('Drive storage (bench/drives.ts)', await runDriveBench());
// Real VMs (bench/qemu.ts) when QEMU is installed; `--no-qemu` skips them.
if (!process.argv.includes('--no-qemu') && spawnSync('qemu-system-x86_64', ['--version']).status === 0) {
  const { benchQemu, printQemuTable } = await import('./qemu.ts');
  printQemuTable(await benchQemu(quick ? 1 : 4));
  // The Debian 12 drive's POST start -> SSH banner (bench/debian.ts); `--no-debian` skips it (minutes under TCG).
  if (!process.argv.includes('--no-debian')) {
    const { benchDebian, printDebianTable } = await import('./debian.ts');
    printDebianTable(await benchDebian(1));
  }
}
printTable('Tenants cannot harm each other (bench/tenants.ts)', await runTenantBench(quick));
// Scale-out on PostgreSQL (bench/postgres.ts; also runs alone: node --import tsx bench/postgres.ts).
await runPostgresBench();
// Drive bytes, host death and starts across nodes (bench/multinode.ts); `--no-multinode` skips them.
if (!process.argv.includes('--no-multinode')) await runMultinodeBench();
// The opensigma command and saved states (bench/cli.ts, bench/states.ts; `-- --cli` runs only these).
await cliSection();

async function cliSection(): Promise<void> {
  const { printCliTable, runCliBench } = await import('./cli.ts');
  const { runStatesBench } = await import('./states.ts');
  printCliTable(await runCliBench(quick));
  process.stdout.write(`\nSaved states (bench/states.ts):\n${(await runStatesBench()).map((l) => `- ${l}`).join('\n')}\n`);
}
