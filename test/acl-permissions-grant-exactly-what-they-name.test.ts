import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const BOB = { email: 'bob-matrix@example.com', password: 'bob-matrix-password' };
const PERMISSIONS = ['LIST', 'EDIT', 'CLONE', 'START', 'STOP', 'OPEN_VNC', 'ATTACH', 'DELETE'];
/** Every permission alone and with LIST, nothing at all, and the one pair an operation needs together. */
const SETS: string[][] = [[], ...PERMISSIONS.map((p) => [p]), ...PERMISSIONS.filter((p) => p !== 'LIST').map((p) => ['LIST', p]), ['LIST', 'EDIT', 'OPEN_VNC']];

type Call = TestServer['call'];
interface Objects {
  server: string;
  drive: string;
  snapshot: string;
  ip: string;
  vlan: string;
  fwpolicy: string;
}

/**
 * One row per operation a grantee may try: what it needs besides LIST, what it answers when granted, and what when
 * refused. Without LIST the object does not exist for him (404, or 400 where he names it in his own server, as a
 * missing one is); with LIST and without the permission it is refused (403, 400 when attaching).
 */
interface Op {
  kind: keyof Objects;
  name: string;
  needs: string[];
  granted: number;
  refused?: number;
  hidden?: number;
  run: (bob: Call, o: Objects) => Promise<number>;
}

const status = async (r: Promise<{ status: number }>) => (await r).status;
const op = (kind: Op['kind'], name: string, needs: string[], granted: number, run: Op['run'], more: Partial<Op> = {}): Op => ({
  kind,
  name,
  needs,
  granted,
  run,
  ...more,
});
/** Attaching names the object in the grantee's own server: refused, or hidden, it answers as a missing one (400). */
const attaching = { refused: 400, hidden: 400 };
const counted = { hidden: 0 };
const serverAction = (action: string, needs: string[]) =>
  op('server', action, needs, 202, (bob, o) => status(bob('POST', `/servers/${o.server}/action/?do=${action}`)));

const ops: Op[] = [
  // ---- servers (stopped, then running for the consoles and stop, then stopped again) ----
  op('server', 'GET', [], 200, (bob, o) => status(bob('GET', `/servers/${o.server}/`))),
  op('server', 'listed', [], 1, (bob, o) => listed(bob, '/servers/detail/', o.server), counted),
  op('server', 'PUT name', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/servers/${o.server}/`, { name: 'renamed' }))),
  op('server', 'PUT vnc_password', ['EDIT', 'OPEN_VNC'], 200, (bob, o) => status(bob('PUT', `/servers/${o.server}/`, { vnc_password: 'bobs-own' }))),
  serverAction('start', ['START']),
  serverAction('open_vnc', ['OPEN_VNC']),
  serverAction('open_console', ['OPEN_VNC']),
  serverAction('close_vnc', ['OPEN_VNC']),
  serverAction('close_console', ['OPEN_VNC']),
  op('server', 'GET runtime', [], 200, (bob, o) => status(bob('GET', `/servers/${o.server}/runtime/`))),
  serverAction('restart', ['STOP']),
  serverAction('stop', ['STOP']),
  serverAction('clone', ['CLONE']),
  op('server', 'DELETE', ['DELETE'], 204, (bob, o) => status(bob('DELETE', `/servers/${o.server}/`))),
  // ---- drives, and the drive's snapshot before the drive can go ----
  op('drive', 'GET', [], 200, (bob, o) => status(bob('GET', `/drives/${o.drive}/`))),
  op('drive', 'listed', [], 1, (bob, o) => listed(bob, '/drives/detail/', o.drive), counted),
  op('drive', 'PUT name', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/drives/${o.drive}/`, { name: 'renamed', size: GiB, media: 'disk' }))),
  op('drive', 'clone', ['CLONE'], 202, (bob, o) => status(bob('POST', `/drives/${o.drive}/action/?do=clone`, {}))),
  op('drive', 'download', ['CLONE'], 206, (bob, o) => status(bob('GET', `/drives/${o.drive}/download/`, undefined, { range: 'bytes=0-15' }))),
  op('drive', 'attach to his own server', ['ATTACH'], 201, (bob, o) => ownServer(bob, { drives: [{ drive: o.drive, device: 'virtio', dev_channel: '0:0' }] }), {
    ...attaching,
  }),
  op('snapshot', 'GET', [], 200, (bob, o) => status(bob('GET', `/snapshots/${o.snapshot}/`))),
  op('snapshot', 'listed', [], 1, (bob, o) => listed(bob, '/snapshots/detail/', o.snapshot), counted),
  op('snapshot', 'PUT name', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/snapshots/${o.snapshot}/`, { name: 'renamed' }))),
  op('snapshot', 'clone', ['CLONE'], 202, (bob, o) => status(bob('POST', `/snapshots/${o.snapshot}/action/?do=clone`, {}))),
  op('snapshot', 'DELETE', ['DELETE'], 204, (bob, o) => status(bob('DELETE', `/snapshots/${o.snapshot}/`))),
  op('drive', 'DELETE', ['DELETE'], 204, (bob, o) => status(bob('DELETE', `/drives/${o.drive}/`))),
  // ---- IPs and VLANs (they have no delete: a subscription ends them) ----
  op('ip', 'GET', [], 200, (bob, o) => status(bob('GET', `/ips/${o.ip}/`))),
  op('ip', 'listed', [], 1, (bob, o) => listed(bob, '/ips/detail/', o.ip), counted),
  op('ip', 'PUT meta', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/ips/${o.ip}/`, { meta: { by: 'bob' } }))),
  op('ip', 'attach to his own server', ['ATTACH'], 201, (bob, o) => ownServer(bob, { nics: [{ ip_v4_conf: { conf: 'static', ip: o.ip } }] }), attaching),
  op('vlan', 'GET', [], 200, (bob, o) => status(bob('GET', `/vlans/${o.vlan}/`))),
  op('vlan', 'listed', [], 1, (bob, o) => listed(bob, '/vlans/detail/', o.vlan), counted),
  op('vlan', 'PUT meta', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/vlans/${o.vlan}/`, { meta: { by: 'bob' } }))),
  op('vlan', 'attach to his own server', ['ATTACH'], 201, (bob, o) => ownServer(bob, { nics: [{ vlan: o.vlan }] }), attaching),
  // ---- firewall policies: LIST, EDIT, ATTACH; only the owner deletes, whatever is granted ----
  op('fwpolicy', 'GET', [], 200, (bob, o) => status(bob('GET', `/fwpolicies/${o.fwpolicy}/`))),
  op('fwpolicy', 'listed', [], 1, (bob, o) => listed(bob, '/fwpolicies/detail/', o.fwpolicy), counted),
  op('fwpolicy', 'listed short', [], 1, (bob, o) => listed(bob, '/fwpolicies/', o.fwpolicy), counted),
  op('fwpolicy', 'PUT name', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/fwpolicies/${o.fwpolicy}/`, { name: 'renamed' }))),
  op('fwpolicy', 'PUT rules', ['EDIT'], 200, (bob, o) =>
    status(bob('PUT', `/fwpolicies/${o.fwpolicy}/`, { rules: [{ action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '23' }] })),
  ),
  // The owner's tags stay whatever a grantee sends: were they dropped, the policy would stop being shared and every
  // operation below would answer 404.
  op('fwpolicy', 'PUT tags', ['EDIT'], 200, (bob, o) => status(bob('PUT', `/fwpolicies/${o.fwpolicy}/`, { tags: [] }))),
  op(
    'fwpolicy',
    'attach to his own server',
    ['ATTACH'],
    201,
    (bob, o) => ownServer(bob, { nics: [{ ip_v4_conf: { conf: 'dhcp' }, firewall_policy: o.fwpolicy }] }),
    attaching,
  ),
  op(
    'fwpolicy',
    'put on his own server by PUT',
    ['ATTACH'],
    200,
    (bob, o) => ownServerEdited(bob, { nics: [{ ip_v4_conf: { conf: 'dhcp' }, firewall_policy: o.fwpolicy }] }),
    attaching,
  ),
  op('fwpolicy', 'DELETE', ['the owner'], 204, (bob, o) => status(bob('DELETE', `/fwpolicies/${o.fwpolicy}/`))),
  op('fwpolicy', 'bulk DELETE', ['the owner'], 204, (bob, o) => status(bob('DELETE', '/fwpolicies/', { objects: [{ uuid: o.fwpolicy }] }))),
];

async function listed(bob: Call, path: string, uuid: string): Promise<number> {
  const r = await bob('GET', `${path}?limit=0`);
  assert.equal(r.status, 200, r.text);
  return r.body.objects.filter((x: any) => x.uuid === uuid).length;
}

/** Creates a server of his own with what he names (then deletes it, so the next attempt finds the object free). */
async function ownServer(bob: Call, extra: Record<string, unknown>): Promise<number> {
  const r = await bob('POST', '/servers/', minimalServer('bobs-own', extra));
  if (r.status === 201) assert.equal((await bob('DELETE', `/servers/${r.body.objects[0].uuid}/`)).status, 204);
  return r.status;
}

/** Creates a bare server of his own, then puts what he names on it with a PUT (then deletes it). */
async function ownServerEdited(bob: Call, extra: Record<string, unknown>): Promise<number> {
  const r = await bob('POST', '/servers/', minimalServer('bobs-edited'));
  assert.equal(r.status, 201, r.text);
  const uuid = r.body.objects[0].uuid;
  const put = await bob('PUT', `/servers/${uuid}/`, { ...minimalServer('bobs-edited'), ...extra });
  assert.equal((await bob('DELETE', `/servers/${uuid}/`)).status, 204);
  return put.status;
}

function expected(op: Op, set: string[]): number {
  if (!set.includes('LIST')) return op.hidden ?? 404;
  return op.needs.every((p) => set.includes(p)) ? op.granted : (op.refused ?? 403);
}

for (const db of databases()) {
  describe(`ACL permissions grant exactly what they name [${db.name}]`, { timeout: 120000 }, () => {
    let t: TestServer;
    let bob: Call;
    const objects: Objects[] = [];
    before(async () => {
      // The matrix buys an IP and a VLAN for every grant: more than one account's default quota.
      t = await startServer({ OPENSIGMA_QUOTA_IPS: '0', OPENSIGMA_QUOTA_VLANS: '0', OPENSIGMA_QUOTA_SUBSCRIPTIONS: '0' }, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
      bob = t.as(BOB.email, BOB.password);
      const n = SETS.length;
      const tagged = await t.call('POST', '/tags/', { objects: SETS.map((s, i) => ({ name: `set-${i}-${s.join('+') || 'none'}` })) });
      const tags = tagged.body.objects.map((x: any) => x.uuid as string);
      const acls = await t.call('POST', '/acls/', {
        objects: SETS.map((s, i) => ({ name: `to bob ${i}`, grantees: [{ email: BOB.email }], rules: s, tags: [tags[i]] })),
      });
      assert.equal(acls.status, 201, acls.text);
      const servers = await t.call('POST', '/servers/', { objects: SETS.map((_, i) => minimalServer(`alice-${i}`, { tags: [tags[i]] })) });
      assert.equal(servers.status, 201, servers.text);
      const drives = await t.call('POST', '/drives/', { objects: SETS.map((_, i) => ({ name: `alice-${i}`, size: GiB, media: 'disk', tags: [tags[i]] })) });
      assert.equal(drives.status, 201, drives.text);
      const driveIds = drives.body.objects.map((d: any) => d.uuid as string);
      await waitFor(async () => (await t.call('GET', '/drives/detail/?limit=0')).body.objects.every((d: any) => d.status === 'unmounted'), 20000, 'the drives');
      const snaps = await t.call('POST', '/snapshots/', { objects: driveIds.map((drive: string, i: number) => ({ drive, tags: [tags[i]] })) });
      assert.equal(snaps.status, 201, snaps.text);
      const available = async () => (await t.call('GET', '/snapshots/detail/?limit=0')).body.objects.every((s: any) => s.status === 'available');
      await waitFor(available, 20000, 'the snapshots');
      const policies = await t.call('POST', '/fwpolicies/', {
        objects: SETS.map((_, i) => ({ name: `alice-${i}`, rules: [{ action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '22' }], tags: [tags[i]] })),
      });
      assert.equal(policies.status, 201, policies.text);
      const subs = await t.call('POST', '/subscriptions/', {
        objects: ['ip', 'vlan'].flatMap((resource) => SETS.map(() => ({ resource, amount: 1, period: '1 month' }))),
      });
      assert.equal(subs.status, 201, subs.text);
      const got = subs.body.objects.map((s: any) => s.subscribed_object as string);
      for (let i = 0; i < n; i++) {
        assert.equal((await t.call('PUT', `/ips/${got[i]}/`, { tags: [tags[i]] })).status, 200);
        assert.equal((await t.call('PUT', `/vlans/${got[n + i]}/`, { tags: [tags[i]] })).status, 200);
        objects.push({
          server: servers.body.objects[i].uuid,
          drive: driveIds[i],
          snapshot: snaps.body.objects[i].uuid,
          ip: got[i],
          vlan: got[n + i],
          fwpolicy: policies.body.objects[i].uuid,
        });
      }
    });
    after(async () => t?.close());

    /** Puts a server where the next operation needs it, as its owner, whatever the grantee managed to do. */
    async function bring(uuid: string, status: 'running' | 'stopped') {
      const cur = await waitFor(
        async () => {
          const s = (await t.call('GET', `/servers/${uuid}/`)).body.status;
          return s === 'running' || s === 'stopped' ? s : null;
        },
        15000,
        `server ${uuid} to settle`,
      );
      if (cur !== status) assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=${status === 'running' ? 'start' : 'stop'}`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${uuid}/`)).body.status === status, 15000, `server ${uuid} ${status}`);
    }

    /** The source drive of a clone is busy until the copy ends; the operations after it need it back. */
    async function settled(drive: string) {
      await waitFor(async () => ['unmounted', 'mounted'].includes((await t.call('GET', `/drives/${drive}/`)).body.status), 15000, `drive ${drive} to settle`);
    }

    test('every permission alone and with LIST, against every operation on servers, drives, snapshots, IPs, VLANs and firewall policies', async () => {
      const failures: string[] = [];
      await Promise.all(
        SETS.map(async (set, i) => {
          const o = objects[i]!;
          for (const op of ops) {
            if (op.kind === 'server' && (op.name === 'open_vnc' || op.name === 'stop')) await bring(o.server, 'running');
            if (op.kind === 'server' && op.name === 'clone') await bring(o.server, 'stopped');
            if (op.kind === 'drive' && op.name === 'download') await settled(o.drive);
            if (op.kind === 'snapshot' && op.name === 'GET') await settled(o.drive);
            const got = await op.run(bob, o);
            const want = expected(op, set);
            if (got !== want) failures.push(`[${set.join('+') || 'nothing'}] ${op.kind} ${op.name}: ${got}, expected ${want}`);
          }
        }),
      );
      assert.deepEqual(failures, []);
      // What the grantees with EDIT changed is what the owner sees, and his tags stayed on every policy.
      for (const [i, set] of SETS.entries()) {
        const p = (await t.call('GET', `/fwpolicies/${objects[i]!.fwpolicy}/`)).body;
        assert.equal(p.name, set.includes('LIST') && set.includes('EDIT') ? 'renamed' : `alice-${i}`, `[${set.join('+')}] policy name`);
        assert.equal(p.rules[0].action, set.includes('LIST') && set.includes('EDIT') ? 'drop' : 'accept', `[${set.join('+')}] policy rules`);
        assert.equal(p.tags.length, 1, `[${set.join('+')}] the owner's tag stays`);
      }
    });

    test('vnc_password shows only with OPEN_VNC, in GET and in lists', async () => {
      for (const [i, set] of SETS.entries()) {
        if (!set.includes('LIST')) continue;
        const s = await bob('GET', `/servers/${objects[i]!.server}/`);
        if (s.status === 404) continue; // deleted by its DELETE grant above
        const want = set.includes('OPEN_VNC') ? (set.includes('EDIT') ? 'bobs-own' : 'testserver') : null;
        assert.equal(s.body.vnc_password, want, `[${set.join('+')}] vnc_password`);
        const list = (await bob('GET', '/servers/detail/?limit=0')).body.objects.find((x: any) => x.uuid === objects[i]!.server);
        assert.equal(list.vnc_password, want, `[${set.join('+')}] vnc_password in the list`);
      }
      const own = (await t.call('GET', `/servers/${objects[0]!.server}/`)).body;
      assert.equal(own.vnc_password, 'testserver', 'the owner sees it');
    });
  });
}
