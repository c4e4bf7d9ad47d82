import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  describe(`server clone [${db.name}]`, () => {
    let t: TestServer;
    let ip: string;
    before(async () => {
      t = await startServer({}, db);
      const subs = await t.call('POST', '/subscriptions/', { objects: [{ resource: 'ip', amount: 1, period: '1 month' }] });
      ip = subs.body.objects[0].subscribed_object;
    });
    after(async () => t.close());

    const drive = async (extra: Record<string, unknown> = {}) => {
      const r = await t.call('POST', '/drives/', { name: 'src-disk', size: 1073741824, media: 'disk', ...extra });
      const uuid = r.body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid as string;
    };
    const clone = (uuid: string, body?: unknown, q = '') => t.call('POST', `/servers/${uuid}/action/?do=clone${q}`, body);

    test('disks are cloned and mounted on the clone, cdroms shared, static IPs become dhcp, new MACs; 202 with the bare server', async () => {
      const [disk, cd] = [await drive(), await drive({ media: 'cdrom', name: 'src-cd' })];
      const tag = (await t.call('POST', '/tags/', { name: 'c' })).body.objects[0].uuid;
      const src = (
        await t.call(
          'POST',
          '/servers/',
          minimalServer('source', {
            drives: [
              { drive: disk, device: 'virtio', dev_channel: '0:0', boot_order: 1 },
              { drive: cd, device: 'ide', dev_channel: '0:0' },
            ],
            nics: [{ ip_v4_conf: { conf: 'static', ip } }, { ip_v4_conf: { conf: 'manual' }, model: 'e1000' }],
            meta: { k: 'v' },
            tags: [tag],
            cpu: 2000,
            smp: 2,
          }),
        )
      ).body.objects[0];
      const r = await clone(src.uuid, { name: 'the clone' });
      assert.equal(r.status, 202, r.text);
      const c = r.body;
      assert.ok(!('objects' in c), 'the new server comes unwrapped');
      assert.notEqual(c.uuid, src.uuid);
      assert.equal(c.name, 'the clone');
      assert.equal(c.status, 'stopped');
      assert.equal(c.vnc_password, src.vnc_password);
      for (const k of ['cpu', 'mem', 'smp', 'meta', 'tags', 'cpu_type', 'hypervisor', 'context']) assert.deepEqual(c[k], src[k], k);
      // drives: ide cdrom first (same drive), virtio disk a new one
      assert.equal(c.drives[0].drive.uuid, cd);
      const newDisk = c.drives[1].drive.uuid;
      assert.notEqual(newDisk, disk);
      assert.deepEqual({ ...c.drives[1], drive: null }, { ...src.drives[1], drive: null });
      const copy = await waitFor(
        async () => {
          const d = (await t.call('GET', `/drives/${newDisk}/`)).body;
          return d.status === 'mounted' ? d : null;
        },
        10000,
        'cloned disk mounted',
      );
      assert.deepEqual(
        copy.mounted_on.map((m: any) => m.uuid),
        [c.uuid],
      );
      assert.equal(copy.size, 1073741824);
      assert.deepEqual((await t.call('GET', `/drives/${cd}/`)).body.mounted_on.map((m: any) => m.uuid).sort(), [src.uuid, c.uuid].sort());
      assert.deepEqual(
        (await t.call('GET', `/drives/${disk}/`)).body.mounted_on.map((m: any) => m.uuid),
        [src.uuid],
      );
      // NICs: new MACs, the static address stays with the source
      assert.deepEqual(
        c.nics.map((n: any) => n.ip_v4_conf),
        [
          { conf: 'dhcp', ip: null },
          { conf: 'manual', ip: null },
        ],
      );
      assert.equal(c.nics[1].model, 'e1000');
      for (const [i, n] of c.nics.entries()) {
        assert.match(n.mac, /^22(:[0-9a-f]{2}){5}$/);
        assert.notEqual(n.mac, src.nics[i].mac);
      }
      assert.deepEqual((await t.call('GET', `/servers/${src.uuid}/`)).body.nics, src.nics);
      // a clone job, ending with its copies
      assert.equal(c.jobs.length, 1);
      // both start: the clone is a server of its own
      await t.call('POST', `/servers/${c.uuid}/action/?do=start`);
      await waitForStatus(t, c.uuid, 'running');
      await t.call('POST', `/servers/${c.uuid}/action/?do=stop`);
      await waitForStatus(t, c.uuid, 'stopped');
    });

    test("the name follows the profile's clone naming when none is given", async () => {
      const src = (await t.call('POST', '/servers/', minimalServer('named'))).body.objects[0];
      assert.equal((await clone(src.uuid)).body.name, 'named');
      const me = (await t.call('GET', '/servers/')).body.objects[0].owner.uuid;
      const profile = await t.call('PUT', '/profile/', { clone_naming: 'COUNTER' });
      assert.equal(profile.status, 200, profile.text);
      assert.equal(await t.running.svc.cloneNamingOf(me), 'COUNTER');
      const first = await clone(src.uuid, {});
      assert.equal(first.body.name, 'named_1');
      assert.equal((await clone(first.body.uuid, null)).body.name, 'named_2');
      assert.equal((await clone(src.uuid, { name: 'explicit' })).body.name, 'explicit');
      await t.call('PUT', '/profile/', { clone_naming: 'DATE' });
      assert.match((await clone(src.uuid)).body.name, /^named-\d{4}-\d\d-\d\d$/);
      await t.call('PUT', '/profile/', { clone_naming: 'NONE' });
    });

    test('random_vnc_password gives 8 alphanumerics, new each time', async () => {
      const src = (await t.call('POST', '/servers/', minimalServer('vnc'))).body.objects[0];
      const a = (await clone(src.uuid, { random_vnc_password: true })).body.vnc_password;
      const b = (await clone(src.uuid, { random_vnc_password: true })).body.vnc_password;
      for (const p of [a, b]) assert.match(p, /^[A-Za-z0-9]{8}$/);
      assert.notEqual(a, b);
      assert.equal((await clone(src.uuid, { random_vnc_password: false })).body.vnc_password, src.vnc_password);
    });

    test('a running server can be cloned; bad bodies are 400 and create nothing; avoid is best effort', async () => {
      const src = (await t.call('POST', '/servers/', minimalServer('busy'))).body.objects[0];
      await t.call('POST', `/servers/${src.uuid}/action/?do=start`);
      await waitForStatus(t, src.uuid, 'running');
      const before = (await t.call('GET', '/servers/?limit=0')).body.meta.total_count;
      for (const body of [{ name: {} }, { name: '' }, { random_vnc_password: 'perhaps' }, [1]]) {
        const r = await clone(src.uuid, body);
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      }
      assert.equal((await t.call('GET', '/servers/?limit=0')).body.meta.total_count, before);
      const r = await clone(src.uuid, { name: 'from running' }, `&avoid=${src.uuid},not-a-uuid`);
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.status, 'stopped');
      await t.call('POST', `/servers/${src.uuid}/action/?do=stop`);
      await waitForStatus(t, src.uuid, 'stopped');
    });
  });
}
