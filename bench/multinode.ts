/**
 * Multi-node figures on PostgreSQL with one shared drive storage (OPENSIGMA_STORAGE_DIR): a 1 GiB drive's upload and
 * download through the API node that took its bytes beside another node; the time from an agent's death (SIGKILL)
 * to its servers showing `unavailable`, beside the heartbeat timeout; and POST start -> running for a server whose
 * drive another API node has just written, beside one whose drive (a library image) every host has had all along.
 * Alone: node --import tsx bench/multinode.ts. Needs OPENSIGMA_BENCH_POSTGRES_URL (or OPENSIGMA_TEST_POSTGRES_URL).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { ADMIN, dropPostgres, freshPostgres, minimalServer } from '../test/helpers/harness.ts';
import { startNode, type NodeProcess } from '../test/helpers/nodes.ts';

const HEARTBEAT_TIMEOUT_MS = 3000;
const STARTS = 3;
const LIB_CDROM = '7fe7bef4-e018-4d70-9bfe-5ae163631ea8';
const ISO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'library', 'images', 'boot.iso');
const USERPW = `${ADMIN.email}:${ADMIN.password}`;
const QUIET = { OPENSIGMA_LOG_LEVEL: 'warn', OPENSIGMA_RATE_GET: '1000000000', OPENSIGMA_RATE_POST: '1000000000', OPENSIGMA_QUOTA_SERVERS: '0' };

const say = (s: string) => process.stderr.write(`bench multinode: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** curl moves the bytes (not this process), so the figure is the API node's and the storage's. Answers MiB/s and the body. */
function curl(args: string[]): { mibPerS: number; body: string } {
  const out = execFileSync('curl', ['-sS', '-u', USERPW, '-w', '\n%{http_code} %{speed_upload} %{speed_download}', ...args], { maxBuffer: 1 << 20 }).toString();
  const lines = out.trimEnd().split('\n');
  const [code, up, down] = lines.pop()!.split(' ');
  if (!code!.startsWith('2')) throw new Error(`curl ${args.join(' ')}: HTTP ${code} ${lines.join('\n').slice(0, 300)}`);
  return { mibPerS: Math.max(Number(up), Number(down)) / 2 ** 20, body: lines.join('\n') };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A request through a node; once more if the pooled connection was closed while idle (a 1 GiB transfer takes minutes). */
const call = (n: NodeProcess, ...args: Parameters<NodeProcess['call']>) => n.call(...args).catch(() => n.call(...args));

const statusOf = async (n: NodeProcess, kind: string, uuid: string) => (await call(n, 'GET', `/${kind}/${uuid}/`)).body?.status as string | undefined;

interface Figures {
  transfer: Array<{ what: string; holder: number; other: number }>;
  death: { ms: number[]; servers: number };
  start: { there: number[]; arriving: number[]; driver: string };
}

async function transfers(one: NodeProcess, two: NodeProcess, dir: string): Promise<Figures['transfer']> {
  // 1 GiB of incompressible bytes: a 1 MiB random block repeated.
  const file = path.join(dir, 'one-gib.img');
  const block = Buffer.from(Array.from({ length: 2 ** 20 }, () => Math.floor(Math.random() * 256)));
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < 1024; i++) fs.writeSync(fd, block);
  fs.closeSync(fd);
  const upload = (n: NodeProcess) => curl(['-X', 'POST', '-H', 'content-type: application/octet-stream', '-T', file, `${n.api}/drives/upload/`]);
  const download = (n: NodeProcess, uuid: string) => curl(['-o', '/dev/null', `${n.api}/drives/${uuid}/download/`]).mibPerS;
  // Each twice, in the order 1, 2, 2, 1, and the better of two: neither node always goes first (the page cache, the
  // disk's writeback of the upload before) on a machine whose other work comes and goes.
  const uploads: Record<string, number[]> = { one: [], two: [] };
  const made: string[] = [];
  for (const [k, n] of [
    ['one', one],
    ['two', two],
    ['two', two],
    ['one', one],
  ] as const) {
    say(`upload of 1 GiB through node ${k === 'one' ? 1 : 2}`);
    const up = upload(n);
    uploads[k]!.push(up.mibPerS);
    made.push(up.body.trim());
  }
  const uuid = made[0]!;
  const downloads: Record<string, number[]> = { one: [], two: [] };
  say('downloads through node 1 (took the bytes) and node 2');
  for (const [k, n] of [
    ['one', one],
    ['two', two],
    ['two', two],
    ['one', one],
  ] as const)
    downloads[k]!.push(download(n, uuid));
  say(
    `upload ${uploads.one!.map((x) => x.toFixed(0))} / ${uploads.two!.map((x) => x.toFixed(0))} MiB/s, download ${downloads.one!.map((x) => x.toFixed(0))} / ${downloads.two!.map((x) => x.toFixed(0))} MiB/s`,
  );
  for (const u of made) await call(one, 'DELETE', `/drives/${u}/`);
  fs.rmSync(file);
  return [
    { what: 'upload 1 GiB, MiB/s (best of 2): through node 2 / through node 1', holder: Math.max(...uploads.one!), other: Math.max(...uploads.two!) },
    {
      what: 'download 1 GiB, MiB/s (best of 2): through node 2, which did not take the upload / through node 1, which did',
      holder: Math.max(...downloads.one!),
      other: Math.max(...downloads.two!),
    },
  ];
}

async function hostDeath(api: NodeProcess, common: Record<string, string>): Promise<Figures['death']> {
  const ms: number[] = [];
  const servers = 4;
  for (let round = 0; round < 3; round++) {
    const victim = await startNode('agent', {
      ...common,
      OPENSIGMA_HOST_NAME: `doomed-${round}`,
      OPENSIGMA_SIM_HOSTS: '1',
      OPENSIGMA_SIM_DELAY_MS: '0',
      OPENSIGMA_LOG_LEVEL: 'info',
    });
    const uuids: string[] = [];
    for (let i = 0; i < servers; i++) {
      const r = await call(api, 'POST', '/servers/', minimalServer(`doomed-${round}-${i}`));
      uuids.push(r.body.objects[0].uuid);
    }
    for (const u of uuids) await call(api, 'POST', `/servers/${u}/action/?do=start`);
    for (const u of uuids) await until(`${u} running`, 30000, async () => (await statusOf(api, 'servers', u)) === 'running');
    // Let a heartbeat pass, so the death is measured from a host freshly renewed at any point of its period.
    await sleep(HEARTBEAT_TIMEOUT_MS / 5 + Math.random() * (HEARTBEAT_TIMEOUT_MS / 5));
    const t0 = performance.now();
    await victim.kill('SIGKILL');
    for (const u of uuids) await until(`${u} unavailable`, HEARTBEAT_TIMEOUT_MS * 10, async () => (await statusOf(api, 'servers', u)) === 'unavailable');
    ms.push(performance.now() - t0);
    fs.rmSync(victim.dataDir, { recursive: true, force: true });
    // Leave no host behind for the next round's placement.
    for (const u of uuids) await call(api, 'DELETE', `/servers/${u}/`).catch(() => {});
  }
  return { ms, servers };
}

async function startTimes(one: NodeProcess, two: NodeProcess, common: Record<string, string>): Promise<Figures['start']> {
  const qemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
  const agent = await startNode('agent', {
    ...common,
    OPENSIGMA_HOST_NAME: 'bench-compute',
    OPENSIGMA_SIM_HOSTS: '1',
    OPENSIGMA_LOG_LEVEL: 'info',
    OPENSIGMA_ON_EXIT: 'shutdown',
    OPENSIGMA_ACPI_TIMEOUT_S: '1',
    ...(qemu ? { OPENSIGMA_DRIVER: 'qemu' } : { OPENSIGMA_SIM_DELAY_MS: '200' }),
  });
  try {
    const timeStart = async (drive: string) => {
      const r = await call(
        two,
        'POST',
        '/servers/',
        minimalServer('bench-start', { mem: 256 * 2 ** 20, drives: [{ boot_order: 1, dev_channel: '0:0', device: 'ide', drive }] }),
      );
      const uuid = r.body.objects[0].uuid as string;
      const t0 = performance.now();
      const s = await call(one, 'POST', `/servers/${uuid}/action/?do=start`);
      if (s.status !== 202) throw new Error(`start: ${s.status} ${s.text}`);
      await until(`${uuid} running`, 120000, async () => (await statusOf(one, 'servers', uuid)) === 'running');
      const took = performance.now() - t0;
      await call(one, 'POST', `/servers/${uuid}/action/?do=stop`);
      await until(`${uuid} stopped`, 60000, async () => (await statusOf(one, 'servers', uuid)) === 'stopped');
      await call(one, 'DELETE', `/servers/${uuid}/`);
      return took;
    };
    const there: number[] = [];
    const arriving: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      there.push(await timeStart(LIB_CDROM));
      // The same bytes, uploaded through node 2 just now: the host has never seen this drive.
      const up = curl(['-X', 'POST', '-H', 'content-type: application/octet-stream', '-T', ISO, `${two.api}/drives/upload/`]).body.trim();
      await call(two, 'PUT', `/drives/${up}/`, { name: 'bench-arriving', media: 'cdrom', size: (await call(two, 'GET', `/drives/${up}/`)).body.size });
      arriving.push(await timeStart(up));
      await call(two, 'DELETE', `/drives/${up}/`);
    }
    return { there, arriving, driver: qemu ? 'qemu' : 'sim' };
  } finally {
    await agent.kill('SIGTERM');
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f0 = (n: number) => n.toFixed(0);

export async function runMultinodeBench(): Promise<void> {
  const pgUrl = process.env.OPENSIGMA_BENCH_POSTGRES_URL ?? process.env.OPENSIGMA_TEST_POSTGRES_URL;
  if (!pgUrl) {
    console.log('multinode: skipped (set OPENSIGMA_BENCH_POSTGRES_URL or OPENSIGMA_TEST_POSTGRES_URL)');
    return;
  }
  const db = await freshPostgres(pgUrl);
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-shared-'));
  const common = {
    ...QUIET,
    OPENSIGMA_DATABASE_URL: db,
    OPENSIGMA_STORAGE_DIR: storage,
    OPENSIGMA_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS),
    OPENSIGMA_RECONCILE_MS: '500',
  };
  const nodes: NodeProcess[] = [];
  try {
    nodes.push(...(await Promise.all([startNode('serve', { ...common, OPENSIGMA_ROLE: 'api' }), startNode('serve', { ...common, OPENSIGMA_ROLE: 'api' })])));
    const [one, two] = nodes as [NodeProcess, NodeProcess];
    const transfer = await transfers(one, two, storage);
    say('host death to unavailable');
    const death = await hostDeath(one, common);
    say('start to running');
    const start = await startTimes(one, two, common);

    console.log(`\nMulti-node (2 API nodes on PostgreSQL, one shared storage dir; ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)})`);
    console.log('| figure: value / baseline | value | baseline | ratio |');
    console.log('|---|---:|---:|---:|');
    for (const t of transfer) console.log(`| ${t.what} | ${f0(t.other)} | ${f0(t.holder)} | ${(t.other / t.holder).toFixed(2)} |`);
    const d = median(death.ms);
    console.log(
      `| agent SIGKILLed -> its ${death.servers} servers unavailable, ms (median of ${death.ms.length}: ${death.ms.map(f0).join(', ')}) / OPENSIGMA_HEARTBEAT_TIMEOUT_MS | ${f0(d)} | ${HEARTBEAT_TIMEOUT_MS} | ${(d / HEARTBEAT_TIMEOUT_MS).toFixed(2)} |`,
    );
    const there = median(start.there);
    const arriving = median(start.arriving);
    console.log(
      `| POST start -> running (${start.driver}), ms (medians): a drive uploaded through node 2 just before (${start.arriving.map(f0).join(', ')}) / the library cdrom every host has (${start.there.map(f0).join(', ')}) | ${f0(arriving)} | ${f0(there)} | ${(arriving / there).toFixed(2)} |`,
    );
    console.log(
      '(The storage dir is one local directory here, standing for the shared file system: the transfer rows measure what the API node adds, ' +
        'not a network file system. A host is declared dead once silent for the timeout, counted from its last heartbeat (every fifth of it), ' +
        'so the death row lies between 0.8 and 1 plus the reconcile period (500 ms). A drive never travels to its host: every host opens it where it lies, so no copy precedes a start.)',
    );
  } finally {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    for (const n of nodes) fs.rmSync(n.dataDir, { recursive: true, force: true });
    fs.rmSync(storage, { recursive: true, force: true });
    await dropPostgres(db).catch(() => {});
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runMultinodeBench();
