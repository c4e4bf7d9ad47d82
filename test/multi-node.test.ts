import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { WebSocket } from 'ws';
import { ADMIN, dropPostgres, freshPostgres, minimalServer, pgQuery, waitFor } from './helpers/harness.ts';
import { startNode, runCli, type NodeProcess } from './helpers/nodes.ts';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { qemuHarness } from './helpers/drivers.ts';
import { Store } from '../src/store/index.ts';
import { EventBus, type ChangeEvent } from '../src/events.ts';

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;
const HEARTBEAT_TIMEOUT_MS = 5000;
const LIBRARY_ISO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'library', 'images', 'boot.iso');
const qemu = qemuHarness();

/** Two API nodes (OPENSIGMA_ROLE=api) and two sim agents as real processes on one PostgreSQL database. */
describe('multi-node on PostgreSQL', { skip: PG ? false : 'needs PostgreSQL: set OPENSIGMA_TEST_POSTGRES_URL (.ci/run does)' }, () => {
  let db: string;
  /** The drive storage every process mounts at one path (OPENSIGMA_STORAGE_DIR), here one shared directory. */
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-shared-drives-'));
  const remote = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-shared-remote-'));
  let a: NodeProcess;
  let b: NodeProcess;
  const agents: Record<string, NodeProcess> = {};
  const started: NodeProcess[] = [];
  const common = () => ({
    OPENSIGMA_DATABASE_URL: db,
    OPENSIGMA_STORAGE_DIR: storage,
    OPENSIGMA_REMOTE_SNAPSHOT_DIR: remote,
    OPENSIGMA_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS),
    OPENSIGMA_RECONCILE_MS: '500',
  });
  const api = async (env: Record<string, string> = {}) => {
    const n = await startNode('serve', { ...common(), OPENSIGMA_ROLE: 'api', OPENSIGMA_RATE_PUT: '6', ...env });
    started.push(n);
    return n;
  };
  const agent = async (name: string, dataDir?: string, env: Record<string, string> = {}) => {
    const n = await startNode(
      'agent',
      { ...common(), OPENSIGMA_HOST_NAME: name, OPENSIGMA_SIM_HOSTS: '1', OPENSIGMA_SIM_DELAY_MS: '200', OPENSIGMA_PUBLIC_HOST: `${name}.example`, ...env },
      dataDir,
    );
    started.push(n);
    agents[name] = n;
    return n;
  };
  const sql = (q: string, params: unknown[] = []) => pgQuery(db, q, params);
  const status = async (n: NodeProcess, uuid: string) => (await n.call('GET', `/servers/${uuid}/`)).body?.status;
  const waitStatus = (n: NodeProcess, uuid: string, want: string, ms = 15000) =>
    waitFor(async () => (await status(n, uuid)) === want, ms, `server ${uuid} to be ${want}`);
  const create = async (n: NodeProcess, name: string, extra: Record<string, unknown> = {}) => {
    const r = await n.call('POST', '/servers/', minimalServer(name, extra));
    assert.equal(r.status, 201, r.text);
    return r.body.objects[0].uuid as string;
  };
  const hostOf = async (uuid: string) => (await sql('SELECT host FROM servers WHERE uuid = $1', [uuid]))[0]?.host as string | null;

  before(async () => {
    db = await freshPostgres(PG!);
    // Every process starts at once on the empty database: migrations and the admin user must cope.
    [a, b] = await Promise.all([api(), api(), agent('agent-a'), agent('agent-b')]);
  });

  after(async () => {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    // For diagnosis: OPENSIGMA_TEST_DUMP=<dir> keeps every node's log.
    const dump = process.env.OPENSIGMA_TEST_DUMP;
    if (dump)
      started.forEach((n, i) =>
        fs.writeFileSync(path.join(dump, `${i}-${n.kind}-${n.env.OPENSIGMA_HOST_NAME ?? ''}.log`), n.logs.map((l) => JSON.stringify(l)).join('\n') + n.stderr),
      );
    for (const n of started) fs.rmSync(n.dataDir, { recursive: true, force: true });
    for (const d of [storage, remote]) fs.rmSync(d, { recursive: true, force: true });
    await dropPostgres(db).catch(() => {});
  });

  test('nodes that started together on an empty database migrated it once', async () => {
    const rows = await sql('SELECT name FROM kysely_migration ORDER BY name');
    assert.ok(rows.length >= 2);
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length);
    assert.equal((await sql('SELECT count(*)::int AS n FROM hosts WHERE state = $1', ['up']))[0].n, 2);
  });

  test('a change through one API node is visible through the other on the next request', async () => {
    const uuid = await create(a, 'cross');
    const viaA = await a.call('GET', `/servers/${uuid}/`);
    const viaB = await b.call('GET', `/servers/${uuid}/`);
    assert.equal(viaB.status, 200);
    assert.deepEqual(viaB.body, viaA.body);
    const edit = await b.call('PUT', `/servers/${uuid}/`, { ...minimalServer('renamed'), name: 'renamed' });
    assert.equal(edit.status, 200, edit.text);
    assert.equal((await a.call('GET', `/servers/${uuid}/`)).body.name, 'renamed');
    assert.equal((await b.call('DELETE', `/servers/${uuid}/`)).status, 204);
    assert.equal((await a.call('GET', `/servers/${uuid}/`)).status, 404);
  });

  test('of 10 simultaneous starts sent to two nodes exactly one is accepted, and an agent runs it', async () => {
    const uuid = await create(a, 'race');
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).call('POST', `/servers/${uuid}/action/?do=start`)));
    const codes = replies.map((r) => r.status).sort();
    assert.deepEqual(codes, [202, 403, 403, 403, 403, 403, 403, 403, 403, 403]);
    await waitStatus(b, uuid, 'running');
    assert.ok(['agent-a', 'agent-b'].includes((await hostOf(uuid))!));
    assert.equal((await a.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
    await waitStatus(a, uuid, 'stopped');
  });

  test('avoid= places servers on different hosts, and availability groups show who shares a host', async () => {
    const x = await create(a, 'x');
    const y = await create(a, 'y');
    const z = await create(a, 'z');
    assert.equal((await a.call('POST', `/servers/${x}/action/?do=start`)).status, 202);
    await waitStatus(a, x, 'running');
    assert.equal((await b.call('POST', `/servers/${y}/action/?do=start&avoid=${x}`)).status, 202);
    await waitStatus(a, y, 'running');
    assert.notEqual(await hostOf(x), await hostOf(y));
    // z shares a host with one of them, whichever the scheduler picks.
    assert.equal((await b.call('POST', `/servers/${z}/action/?do=start`)).status, 202);
    await waitStatus(a, z, 'running');
    const groups = (await b.call('GET', '/servers/availability_groups/')).body as string[][];
    const hostZ = await hostOf(z);
    const mate = (await hostOf(x)) === hostZ ? x : y;
    const other = mate === x ? y : x;
    assert.deepEqual(
      groups
        .find((g) => g.includes(z))!
        .slice()
        .sort(),
      [mate, z].sort(),
    );
    assert.deepEqual(
      groups.find((g) => g.includes(other)),
      [other],
    );
    // Console and VNC URLs name the host the guest runs on.
    const vnc = await a.call('POST', `/servers/${z}/action/?do=open_vnc`);
    assert.equal(vnc.status, 202, vnc.text);
    assert.match(vnc.body.vnc_url, new RegExp(`^vnc://${hostZ}\\.example:\\d+$`));
    for (const s of [x, y, z]) await a.call('POST', `/servers/${s}/action/?do=stop`);
    for (const s of [x, y, z]) await waitStatus(a, s, 'stopped');
  });

  test('rate limits count per account across API nodes', async () => {
    const user = { email: 'limited@example.com', password: 'limited-password' };
    const made = await runCli(['user', 'add', user.email, '--password', user.password], { OPENSIGMA_DATABASE_URL: db, OPENSIGMA_DATA: a.dataDir });
    assert.equal(made.code, 0, made.stderr);
    const auth = { authorization: `Basic ${Buffer.from(`${user.email}:${user.password}`).toString('base64')}` };
    const as = (n: NodeProcess) => (method: string, p: string, body?: unknown) => n.call(method, p, body, auth);
    const created = await as(a)('POST', '/servers/', minimalServer('limited'));
    assert.equal(created.status, 201, created.text);
    const uuid = created.body.objects[0].uuid;
    // Stay inside one minute window, so the counter cannot reset midway.
    if (Date.now() % 60000 > 50000) await new Promise((r) => setTimeout(r, 60000 - (Date.now() % 60000) + 100));
    const put = (n: NodeProcess) => as(n)('PUT', `/servers/${uuid}/`, minimalServer('limited'));
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await put(i % 2 ? a : b)).status);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 200]);
    const over = await put(a);
    assert.equal(over.status, 429);
    assert.equal((await put(b)).status, 429);
    // Another account has its own budget.
    const mine = await a.call('POST', '/servers/', minimalServer('admin-own'));
    assert.equal((await b.call('PUT', `/servers/${mine.body.objects[0].uuid}/`, minimalServer('admin-own'))).status, 200);
  });

  test('change events published by one process reach listeners in another', async () => {
    const store = await Store.open(db, fs.mkdtempSync(path.join(a.dataDir, 'bus-')));
    const bus = new EventBus(store.dialect);
    await bus.start();
    const seen: ChangeEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    try {
      const uuid = await create(b, 'evented');
      assert.equal((await a.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      // 'created' comes from API node b, 'started' from whichever agent ran it.
      await waitFor(async () => seen.some((e) => e.uuid === uuid && e.action === 'started'), 15000, 'started event');
      assert.ok(seen.some((e) => e.uuid === uuid && e.action === 'created'));
      await a.call('POST', `/servers/${uuid}/action/?do=stop`);
      await waitStatus(a, uuid, 'stopped');
    } finally {
      await store.close();
    }
  });

  test('a websocket client on one node hears of changes made through the other node and by the agents', async () => {
    const login = await a.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
    assert.equal(login.status, 200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    // The cookie came from node a; the client connects to node b (the token lives in the shared database).
    const ws = new WebSocket(b.url.replace(/^http/, 'ws') + '/websocket', { headers: { cookie } });
    const frames: any[] = [];
    ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      const uuid = await create(a, 'heard');
      assert.equal((await a.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitFor(
        async () => frames.some((f) => f.resource_uri?.includes(uuid) && f.object?.status === 'running'),
        15000,
        'a frame showing the server running',
      );
      assert.equal(frames.find((f) => f.resource_uri?.includes(uuid))!.resource_type, 'servers');
      await a.call('POST', `/servers/${uuid}/action/?do=stop`);
      await waitStatus(a, uuid, 'stopped');
    } finally {
      ws.close();
    }
  });

  test('GET /metrics answers without auth in the Prometheus text format; JSON logs carry the request id', async () => {
    const res = await fetch(`${a.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^opensigma_http_requests_total\{method="GET",status="200"\} \d+$/m);
    assert.match(text, /^opensigma_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    assert.match(text, /^opensigma_operations\{state="done"\} [1-9]\d*$/m);
    assert.match(text, /^opensigma_servers\{status="stopped"\} [1-9]\d*$/m);
    assert.match(text, /^opensigma_hosts\{state="up"\} 2$/m);
    await a.call('GET', '/servers/', undefined, { 'x-request-id': 'trace-me-42' });
    await waitFor(async () => a.logs.some((l) => l.request_id === 'trace-me-42'), 5000, 'a log line with the request id');
  });

  test('kill -9 of an API node loses no acknowledged write, and the other node keeps serving', async () => {
    const victim = await api();
    const acked: string[] = [];
    const writes = Array.from({ length: 40 }, (_, i) =>
      victim
        .call('POST', '/servers/', minimalServer(`w${i}`))
        .then((r) => r.status === 201 && acked.push(r.body.objects[0].uuid))
        .catch(() => {}),
    );
    await waitFor(async () => acked.length >= 5, 15000, 'some acknowledged writes');
    await victim.kill('SIGKILL');
    await Promise.all(writes);
    assert.ok(acked.length >= 5);
    for (const uuid of acked) assert.equal((await b.call('GET', `/servers/${uuid}/`)).status, 200, `acknowledged ${uuid} is lost`);
    assert.equal((await b.call('GET', '/servers/?limit=0')).status, 200);
  });

  test('a restart of PostgreSQL connections is survived with no lost job', async () => {
    const uuid = await create(a, 'through-restart');
    assert.equal((await b.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    // Cut every connection to this database (what a PostgreSQL restart does to the nodes) while the job runs.
    await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    await waitFor(async () => (await a.call('GET', `/servers/${uuid}/`).catch(() => null))?.body?.status === 'running', 20000, 'the job to finish');
    const stop = await waitFor(async () => {
      const r = await b.call('POST', `/servers/${uuid}/action/?do=stop`);
      return r.status === 202 ? r : null;
    });
    assert.equal(stop!.status, 202);
    await waitStatus(b, uuid, 'stopped');
    const stuck = await sql(`SELECT id FROM operations WHERE state IN ('pending', 'running')`);
    assert.deepEqual(stuck, []);
  });

  test('a second agent cannot take a host a live agent holds', async () => {
    const dup = await startNode('agent', { ...common(), OPENSIGMA_HOST_NAME: 'agent-b', OPENSIGMA_SIM_HOSTS: '1' }).catch((e: Error) => e);
    assert.ok(dup instanceof Error, 'the second agent must refuse to start');
    assert.match(dup.message, /held by the live agent/);
  });

  test('kill -9 of an agent: its servers become unavailable, its claimed job fails, and on return it reconciles', async () => {
    const onA: string[] = [];
    const all: string[] = [];
    for (let i = 0; i < 4; i++) {
      const uuid = await create(a, `k${i}`);
      all.push(uuid);
      await a.call('POST', `/servers/${uuid}/action/?do=start`);
    }
    for (const u of all) await waitStatus(a, u, 'running');
    for (const u of all) if ((await hostOf(u)) === 'agent-a') onA.push(u);
    assert.ok(onA.length >= 1, 'some server runs on agent-a');
    // A job agent-a claims and never finishes: the start hangs in its hypervisor.
    const hung = await create(a, 'hung', { meta: { sim_hang_next: 'start' } });
    const placed = await waitFor(async () => {
      const r = await b.call('POST', `/servers/${hung}/action/?do=start&avoid=${all.filter((u) => !onA.includes(u)).join(',')}`);
      assert.equal(r.status, 202);
      return (await hostOf(hung)) === 'agent-a'
        ? true
        : (await b.call('POST', `/servers/${hung}/action/?do=stop`), await waitStatus(b, hung, 'stopped'), false);
    });
    assert.ok(placed);
    await waitFor(
      async () =>
        (await sql(`SELECT state FROM operations WHERE server_uuid = $1 AND kind = 'start' ORDER BY id DESC LIMIT 1`, [hung]))[0]?.state === 'running',
    );

    const dataDir = agents['agent-a']!.dataDir;
    await agents['agent-a']!.kill('SIGKILL');
    // What the host really runs changes while its agent is away: one guest powers off.
    const file = path.join(dataDir, 'sim', 'agent-a.json');
    const guests = JSON.parse(fs.readFileSync(file, 'utf8'));
    const [gone, ...kept] = onA;
    for (const g of guests) if (g.uuid === gone) g.state = 'off';
    fs.writeFileSync(file, JSON.stringify(guests));

    for (const u of [...onA, hung]) await waitStatus(b, u, 'unavailable', HEARTBEAT_TIMEOUT_MS * 3);
    const job = (await sql(`SELECT state, error FROM operations WHERE server_uuid = $1 AND kind = 'start' ORDER BY id DESC LIMIT 1`, [hung]))[0];
    assert.equal(job.state, 'failed');
    assert.match(job.error, /stopped answering/);
    assert.equal((await sql(`SELECT state FROM hosts WHERE name = 'agent-a'`))[0].state, 'down');
    for (const u of all.filter((x) => !onA.includes(x))) assert.equal(await status(a, u), 'running');

    await agent('agent-a', dataDir);
    for (const u of kept) await waitStatus(a, u, 'running');
    await waitStatus(a, gone!, 'stopped');
    await waitStatus(a, hung, 'stopped');
    for (const u of all) await a.call('POST', `/servers/${u}/action/?do=stop`);
    for (const u of all) await waitStatus(a, u, 'stopped');
  });

  // Below, the drive bytes cross nodes and one agent runs QEMU. Its state is shared by the tests that follow.
  const cli = (...args: string[]) => runCli(args, { OPENSIGMA_DATABASE_URL: db, OPENSIGMA_LOG_LEVEL: 'silent' });
  const auth = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;
  const download = async (n: NodeProcess, uuid: string) => {
    const r = await fetch(`${n.api}/drives/${uuid}/download/`, { headers: { authorization: auth, range: `bytes=0-${iso.length - 1}` } });
    assert.equal(r.status, 206, `download of ${uuid} through ${n.url}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const driveStatus = (n: NodeProcess, uuid: string, want: string) =>
    waitFor(async () => ((await n.call('GET', `/drives/${uuid}/`)).body?.status === want ? true : null), 30000, `drive ${uuid} to be ${want}`);
  const auditOf = async (n: NodeProcess, uuid: string) => (await n.call('GET', `/logs/?uuid=${uuid}&limit=0`)).body.objects as any[];
  /** The agent a sim host was switched from to QEMU; its old host is retired. */
  let computeHost = 'agent-c';
  let uploaded = '';
  let iso: Buffer;

  test('the driver switched on an existing data directory leaves no server stuck; hosts drain, and remove once nothing runs there', async () => {
    const c = await agent('agent-c');
    for (const h of ['agent-a', 'agent-b']) {
      const drained = await cli('hosts', 'drain', h);
      assert.equal(drained.code, 0, drained.stderr);
      assert.match(drained.stdout, new RegExp(`^drained ${h}: no new servers go there`));
    }
    const uuid = await create(a, 'on-the-old-driver');
    assert.equal((await b.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    await waitStatus(a, uuid, 'running');
    assert.equal(await hostOf(uuid), 'agent-c', 'drained hosts take no new server');
    // The operator moves this machine from the simulator to QEMU, as docs/qemu.md says, on the same data dir.
    assert.equal(await c.kill('SIGTERM'), 0);
    const removeUp = await cli('hosts', 'remove', 'agent-b');
    assert.equal(removeUp.code, 1, 'a host whose agent is alive is not removed');
    if (!qemu.skip) computeHost = 'agent-q';
    await agent(computeHost, c.dataDir, {
      ...(qemu.skip ? {} : { OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_ON_EXIT: 'shutdown', OPENSIGMA_ACPI_TIMEOUT_S: '1' }),
      OPENSIGMA_SIM_HOSTS: '1',
    });
    if (computeHost === 'agent-c') return; // without QEMU the same host comes back: nothing to retire
    await waitStatus(b, uuid, 'stopped');
    assert.equal((await sql(`SELECT state FROM hosts WHERE name = 'agent-c'`))[0].state, 'down');
    assert.ok(
      (await auditOf(a, uuid)).some((e) => e.action === 'stop' && /no longer served/.test(e.details)),
      'the owner is told why the server stopped',
    );
    assert.deepEqual(await sql(`SELECT uuid FROM servers WHERE status IN ('starting', 'stopping')`), [], 'no server is left transitional');
    assert.equal((await b.call('DELETE', `/servers/${uuid}/`)).status, 204);
    const removed = await cli('hosts', 'remove', 'agent-c');
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^removed agent-c/);
    const list = JSON.parse((await cli('hosts', 'list', '--json')).stdout) as Array<{ name: string; driver: string; state: string }>;
    assert.deepEqual(list.map((h) => h.name).sort(), ['agent-a', 'agent-b', 'agent-q']);
    assert.equal(list.find((h) => h.name === 'agent-q')!.driver, 'qemu');
  });

  test('an upload through node 1 downloads byte for byte through node 2; its clone through node 2 boots on another host', async () => {
    iso = fs.readFileSync(LIBRARY_ISO);
    const up = await fetch(`${a.api}/drives/upload/`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(iso),
    });
    assert.equal(up.status, 201);
    uploaded = (await up.text()).trim();
    assert.ok((await download(b, uploaded)).equals(iso), 'node 2 serves the bytes node 1 took');
    const clone = await b.call('POST', `/drives/${uploaded}/action/?do=clone`, { name: 'boot-clone', media: 'cdrom' });
    assert.equal(clone.status, 202, clone.text);
    const copy = clone.body.objects[0].uuid as string;
    await driveStatus(a, copy, 'unmounted');
    assert.equal((await a.call('GET', `/jobs/${clone.body.objects[0].jobs[0].uuid}/`)).body.state, 'success');
    const server = await create(b, 'boots-the-clone', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'ide', drive: copy }] });
    assert.equal((await a.call('POST', `/servers/${server}/action/?do=start`)).status, 202);
    await waitStatus(b, server, 'running', 60000);
    assert.equal(await hostOf(server), computeHost);
    if (computeHost === 'agent-q') {
      // QEMU on the compute host opened the clone from the shared storage, where node 2 wrote it.
      const qemus = fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .map((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
          } catch {
            return '';
          }
        })
        .filter((cmd) => cmd.includes(server));
      assert.ok(
        qemus.some((cmd) => cmd.includes(path.join(storage, `${copy}.img`))),
        'a QEMU process reads the clone from the shared storage',
      );
    }
    // The agent writes the audit entries of what it did: the API nodes never ran this guest.
    await waitFor(async () => (await auditOf(a, server)).some((e) => e.action === 'boot' && e.success === true), 15000, 'a boot entry');
    assert.equal((await a.call('POST', `/servers/${server}/action/?do=stop`)).status, 202);
    await waitStatus(b, server, 'stopped', 60000);
    await waitFor(async () => (await auditOf(b, server)).some((e) => e.action === 'stop' && e.success === true), 15000, 'a stop entry');
  });

  test(
    'a server whose drive is unreachable fails its start with the reason, through the audit log and a websocket frame',
    { skip: qemu.skip ?? false },
    async () => {
      const login = await a.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
      const ws = new WebSocket(a.url.replace(/^http/, 'ws') + '/websocket', { headers: { cookie } });
      const frames: any[] = [];
      ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
      await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
      try {
        const d = await a.call('POST', '/drives/', { objects: [{ name: 'goes-missing', media: 'disk', size: 2 ** 30 }] });
        const drive = d.body.objects[0].uuid as string;
        await driveStatus(b, drive, 'unmounted');
        // The storage loses the drive's bytes (a mount gone, a file deleted behind the cloud's back).
        fs.rmSync(path.join(storage, `${drive}.img`));
        const server = await create(b, 'unreachable-drive', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive }] });
        assert.equal((await b.call('POST', `/servers/${server}/action/?do=start`)).status, 202);
        await waitStatus(a, server, 'stopped', 30000);
        const entry = await waitFor(async () => (await auditOf(b, server)).find((e) => e.action === 'start_failed') ?? null, 15000, 'a start_failed entry');
        assert.equal(entry.success, false);
        assert.match(entry.error_message, new RegExp(`drive ${drive} has no image file on this host`));
        const frame = await waitFor(async () => frames.find((f) => f.object?.uuid === server && f.error) ?? null, 15000, 'a frame with the error');
        assert.match(frame.error, /has no image file/);
        assert.equal(frame.object.status, 'stopped');
      } finally {
        ws.close();
      }
    },
  );

  test('a remote snapshot taken through node 1 is restored into a drive through node 2', async () => {
    const made = await a.call('POST', '/remotesnapshots/', { objects: [{ drive: uploaded, name: 'offsite' }] });
    assert.equal(made.status, 201, made.text);
    const snap = made.body.objects[0].uuid as string;
    await waitFor(async () => ((await b.call('GET', `/remotesnapshots/${snap}/`)).body.status === 'available' ? true : null), 30000, 'the remote copy');
    const restored = await b.call('POST', `/remotesnapshots/${snap}/action/?do=clone`, { name: 'restored' });
    assert.equal(restored.status, 202, restored.text);
    await driveStatus(a, restored.body.uuid, 'unmounted');
    assert.ok((await download(a, restored.body.uuid)).equals(iso), 'the restored drive holds the uploaded bytes');
    for (const h of ['agent-a', 'agent-b']) assert.equal((await cli('hosts', 'undrain', h)).code, 0);
  });
});
