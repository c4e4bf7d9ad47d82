/**
 * Scale-out figures on PostgreSQL beside SQLite: GET one server and POST start+stop with one and two API nodes,
 * and the placement throughput of 1,000 starts across 4 sim agents. Each process's CPU share is printed (from
 * /proc/<pid>/stat), since on a small machine the load generator, PostgreSQL and the nodes share the cores.
 * Needs OPENSIGMA_BENCH_POSTGRES_URL (or OPENSIGMA_TEST_POSTGRES_URL): a role that may create databases.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { load } from './load.ts';
import pg from 'pg';
import { ADMIN, dropPostgres, freshPostgres, minimalServer } from '../test/helpers/harness.ts';
import { startNode, type NodeProcess } from '../test/helpers/nodes.ts';

const SECONDS = Number(process.env.OPENSIGMA_BENCH_SECONDS ?? 5);
const AUTH = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;
const QUIET = {
  OPENSIGMA_LOG_LEVEL: 'warn',
  OPENSIGMA_RATE_GET: '1000000000',
  OPENSIGMA_RATE_POST: '1000000000',
  OPENSIGMA_RATE_PUT: '1000000000',
  OPENSIGMA_QUOTA_SERVERS: '0',
};
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function cpuTicks(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // utime + stime
  } catch {
    return 0;
  }
}

/** Every PostgreSQL process (the server and its backends) counts as one "postgres" row. */
function postgresPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim().startsWith('postgres');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** CPU use of named processes over a measurement, as a share of one core. */
async function withCpu<T>(procs: Record<string, number>, fn: () => Promise<T>): Promise<{ result: T; cpu: string; serverSeconds: number }> {
  const pg0 = new Map(postgresPids().map((p) => [p, cpuTicks(p)]));
  const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuTicks(pid)]));
  const t0 = Date.now();
  const result = await fn();
  const wall = (Date.now() - t0) / 1000;
  // Share of one core, and the CPU seconds behind it (what projects the figure onto free cores).
  const share = (ticks: number) => `${Math.round((ticks / TICK / wall) * 100)}% (${(ticks / TICK).toFixed(1)} s)`;
  const parts = Object.entries(procs).map(([k, pid]) => `${k} ${share(cpuTicks(pid) - before[k]!)}`);
  let pgTicks = 0;
  for (const p of postgresPids()) pgTicks += cpuTicks(p) - (pg0.get(p) ?? 0);
  parts.push(`postgres ${share(pgTicks)}`);
  // Everything but the load generator: what serving the requests cost.
  let serverTicks = pgTicks;
  for (const [k, pid] of Object.entries(procs)) if (k !== 'load generator') serverTicks += cpuTicks(pid) - before[k]!;
  return { result, cpu: parts.join(', '), serverSeconds: serverTicks / TICK };
}

interface Row {
  scenario: string;
  db: string;
  nodes: number;
  reqs: number;
  p99: number;
  cpu: string;
  /** CPU of the nodes, agents and PostgreSQL per request */
  cpuMs: number;
}

/** GET one server with wrk, the connections split across the nodes (each run warms its node up first). */
async function getOne(nodes: NodeProcess[], uuid: string): Promise<{ reqs: number; total: number; p99: number }> {
  const runs = await Promise.all(
    nodes.map((n) => load({ url: `${n.api}/servers/${uuid}/`, connections: 16 / nodes.length, durationS: SECONDS, headers: { authorization: AUTH } })),
  );
  const errors = runs.reduce((s, r) => s + r.non2xx, 0);
  if (errors) console.warn(`  (${errors} failed GETs)`);
  return { reqs: runs.reduce((s, r) => s + r.reqPerSec, 0), total: runs.reduce((s, r) => s + r.total, 0), p99: Math.max(...runs.map((r) => r.p99)) };
}

/** Workers, each owning one server, alternate start and stop as fast as the API accepts them. */
async function startStop(nodes: NodeProcess[], uuids: string[]): Promise<{ reqs: number; total: number; p99: number }> {
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    uuids.map(async (uuid, i) => {
      const node = nodes[i % nodes.length]!;
      let action = 'start';
      while (Date.now() < deadline) {
        const t = performance.now();
        const r = await fetch(`${node.api}/servers/${uuid}/action/?do=${action}`, { method: 'POST', headers: { authorization: AUTH } });
        await r.arrayBuffer();
        latencies.push(performance.now() - t);
        if (r.status === 202) action = action === 'start' ? 'stop' : 'start';
        else await new Promise((res) => setTimeout(res, 2)); // mid-transition: try again
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { reqs: latencies.length / SECONDS, total: latencies.length, p99: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0) };
}

async function createServers(node: NodeProcess, n: number, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 100) {
    const objects = Array.from({ length: Math.min(100, n - i) }, (_, j) => minimalServer(`${prefix}-${i + j}`));
    const r = await node.call('POST', '/servers/', { objects });
    if (r.status !== 201) throw new Error(`creating servers: ${r.status} ${r.text.slice(0, 300)}`);
    out.push(...r.body.objects.map((o: { uuid: string }) => o.uuid));
  }
  return out;
}

async function measureApi(rows: Row[], db: string, nodes: NodeProcess[], others: Record<string, number>): Promise<void> {
  const [uuid] = await createServers(nodes[0]!, 1, 'get');
  const pids = { ...Object.fromEntries(nodes.map((n, i) => [`api${i + 1}`, n.proc.pid!])), ...others, 'load generator': process.pid };
  const get = await withCpu(pids, () => getOne(nodes, uuid!));
  rows.push({
    scenario: 'GET one server',
    db,
    nodes: nodes.length,
    ...get.result,
    cpu: get.cpu,
    cpuMs: (1000 * get.serverSeconds) / Math.max(1, get.result.total),
  });
  const servers = await createServers(nodes[0]!, 8, 'ss');
  const ss = await withCpu(pids, () => startStop(nodes, servers));
  rows.push({
    scenario: 'POST start+stop',
    db,
    nodes: nodes.length,
    ...ss.result,
    cpu: ss.cpu,
    cpuMs: (1000 * ss.serverSeconds) / Math.max(1, ss.result.total),
  });
}

/** 1,000 starts across 4 sim agents: from the first request until every server runs. */
async function placement(pgUrl: string): Promise<{ seconds: number; accepted: number; cpu: string }> {
  const db = await freshPostgres(pgUrl);
  const env = { ...QUIET, OPENSIGMA_DATABASE_URL: db };
  const started: NodeProcess[] = [];
  try {
    const api = await startNode('serve', { ...env, OPENSIGMA_ROLE: 'api' });
    started.push(api);
    const agents = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        startNode('agent', {
          ...env,
          OPENSIGMA_LOG_LEVEL: 'info',
          OPENSIGMA_HOST_NAME: `bench-${i}`,
          OPENSIGMA_SIM_HOSTS: '1',
          OPENSIGMA_SIM_DELAY_MS: '0',
          OPENSIGMA_HOST_CPU_MHZ: '400000',
        }),
      ),
    );
    started.push(...agents);
    const uuids = await createServers(api, 1000, 'place');
    const pids = { api1: api.proc.pid!, ...Object.fromEntries(agents.map((a, i) => [`agent${i + 1}`, a.proc.pid!])), 'load generator': process.pid };
    let accepted = 0;
    const { result: seconds, cpu } = await withCpu(pids, async () => {
      const t0 = Date.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < uuids.length) {
            const uuid = uuids[next++]!;
            const r = await api.call('POST', `/servers/${uuid}/action/?do=start`);
            if (r.status !== 202) throw new Error(`start: ${r.status} ${r.text.slice(0, 200)}`);
          }
        }),
      );
      accepted = (Date.now() - t0) / 1000;
      for (;;) {
        const m = await (await fetch(`${api.url}/metrics`)).text();
        const running = Number(m.match(/^opensigma_servers\{status="running"\} (\d+)$/m)?.[1] ?? 0);
        if (running >= uuids.length) break;
        if (Date.now() - t0 > 120_000) {
          const c = new pg.Client({ connectionString: db });
          await c.connect();
          const stuck = await c.query(`SELECT id, host, kind, state, claimed_by, attempts, error FROM operations WHERE state IN ('pending', 'running')`);
          await c.end();
          console.error('unfinished operations:', JSON.stringify(stuck.rows));
          throw new Error(
            `only ${running} of ${uuids.length} running after 120 s:\n${m
              .split('\n')
              .filter((l) => /^opensigma_(servers|operations|hosts)/.test(l))
              .join('\n')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return (Date.now() - t0) / 1000;
    });
    return { seconds, accepted, cpu };
  } finally {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    for (const n of started) fs.rmSync(n.dataDir, { recursive: true, force: true });
    await dropPostgres(db).catch(() => {});
  }
}

export async function runPostgresBench(only?: 'placement'): Promise<void> {
  const pgUrl = process.env.OPENSIGMA_BENCH_POSTGRES_URL ?? process.env.OPENSIGMA_TEST_POSTGRES_URL;
  if (!pgUrl) {
    console.log('postgres: skipped (set OPENSIGMA_BENCH_POSTGRES_URL or OPENSIGMA_TEST_POSTGRES_URL)');
    return;
  }
  if (only === 'placement') return void console.log(await placement(pgUrl));
  const rows: Row[] = [];
  const cleanup: Array<() => Promise<void>> = [];
  try {
    // SQLite: one process does everything.
    const lite = await startNode('serve', { ...QUIET, OPENSIGMA_SIM_DELAY_MS: '0' });
    cleanup.push(async () => void (await lite.kill('SIGTERM'), fs.rmSync(lite.dataDir, { recursive: true, force: true })));
    await measureApi(rows, 'sqlite', [lite], {});
    await lite.kill('SIGTERM');

    // PostgreSQL: API nodes with role=api and one sim agent.
    const db = await freshPostgres(pgUrl);
    cleanup.push(() => dropPostgres(db).catch(() => {}));
    const env = { ...QUIET, OPENSIGMA_DATABASE_URL: db };
    const [api1, api2, agent] = await Promise.all([
      startNode('serve', { ...env, OPENSIGMA_ROLE: 'api' }),
      startNode('serve', { ...env, OPENSIGMA_ROLE: 'api' }),
      startNode('agent', { ...env, OPENSIGMA_LOG_LEVEL: 'info', OPENSIGMA_HOST_NAME: 'bench-agent', OPENSIGMA_SIM_DELAY_MS: '0' }),
    ]);
    for (const n of [api1!, api2!, agent!]) cleanup.push(async () => void (await n.kill('SIGTERM'), fs.rmSync(n.dataDir, { recursive: true, force: true })));
    await measureApi(rows, 'postgres', [api1!], { agent: agent!.proc.pid! });
    await measureApi(rows, 'postgres', [api1!, api2!], { agent: agent!.proc.pid! });
  } finally {
    for (const c of cleanup.reverse()) await c();
  }

  console.log(`\nScale-out (${SECONDS} s per figure; CPU shares in % of one core, the machine has ${(await import('node:os')).cpus().length})`);
  console.log('| scenario | database | API nodes | req/s | p99 ms | server CPU ms/req | CPU share |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.scenario} | ${r.db} | ${r.nodes} | ${Math.round(r.reqs)} | ${r.p99} | ${r.cpuMs.toFixed(2)} | ${r.cpu} |`);
  const get = (db: string, n: number) => rows.find((r) => r.scenario === 'GET one server' && r.db === db && r.nodes === n)!.reqs;
  const ss = (db: string, n: number) => rows.find((r) => r.scenario === 'POST start+stop' && r.db === db && r.nodes === n)!.reqs;
  console.log(`GET one server, PostgreSQL / SQLite: ${Math.round((get('postgres', 1) / get('sqlite', 1)) * 100)}% (goal >= 50%)`);
  console.log(
    `second API node: GET ${Math.round((get('postgres', 2) / get('postgres', 1)) * 100)}%, start+stop ${Math.round((ss('postgres', 2) / ss('postgres', 1)) * 100)}% of one node (goal >= 100%)`,
  );

  const p = await placement(pgUrl);
  console.log(
    `placement: 1,000 starts across 4 sim agents (OPENSIGMA_SIM_DELAY_MS=0) all running in ${p.seconds.toFixed(1)} s (goal < 20 s; all 1,000 accepted after ${p.accepted.toFixed(1)} s)`,
  );
  console.log(`  CPU share: ${p.cpu}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await runPostgresBench(process.argv.includes('--placement') ? 'placement' : undefined);
