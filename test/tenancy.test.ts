import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  // A timeout: a hang here was a real bug (an access check reading beside an open SQLite transaction).
  describe(`tenancy [${db.name}]`, { timeout: 120000 }, () => {
    let t: TestServer;
    let alice: TestServer['call'];
    let bob: TestServer['call'];
    let server: any;
    let disk: string;
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create('alice@example.com', 'alice-pw-1');
      await t.running.svc.store.users.create('bob@example.com', 'bob-pw-1');
      alice = t.as('alice@example.com', 'alice-pw-1');
      bob = t.as('bob@example.com', 'bob-pw-1');
      disk = (await alice('POST', '/drives/', { name: 'alice-disk', size: 1073741824, media: 'disk' })).body.objects[0].uuid;
      await waitFor(async () => (await alice('GET', `/drives/${disk}/`)).body.status === 'unmounted', 10000, 'drive');
      const tag = (await alice('POST', '/tags/', { name: 'alice-tag' })).body.objects[0].uuid;
      server = (await alice('POST', '/servers/', minimalServer('alice-server', { tags: [tag] }))).body.objects[0];
    });
    after(async () => t.close());

    /** Bob asking for Alice's object gets exactly what he gets for an object that does not exist. */
    async function sameAsMissing(method: string, p: (id: string) => string, body?: unknown) {
      const missing = '00000000-0000-4000-8000-000000000000';
      const theirs = await bob(method, p(server.uuid), body);
      const none = await bob(method, p(missing), body);
      assert.equal(theirs.status, 404, `${method} ${p(server.uuid)}: ${theirs.text}`);
      assert.equal(theirs.status, none.status);
      assert.deepEqual(theirs.body, none.body);
    }

    test("another account's server answers 404 exactly like a missing one, for every operation", async () => {
      await sameAsMissing('GET', (id) => `/servers/${id}/`);
      await sameAsMissing('GET', (id) => `/servers/${id}/runtime/`);
      await sameAsMissing('GET', (id) => `/servers/availability_groups/${id}/`);
      await sameAsMissing('PUT', (id) => `/servers/${id}/`, { name: 'mine now' });
      await sameAsMissing('DELETE', (id) => `/servers/${id}/`);
      for (const action of ['start', 'stop', 'shutdown', 'restart', 'clone', 'open_vnc', 'close_vnc', 'open_console', 'close_console'])
        await sameAsMissing('POST', (id) => `/servers/${id}/action/?do=${action}`);
      const still = await alice('GET', `/servers/${server.uuid}/`);
      assert.deepEqual(still.body, server);
    });

    test('lists and filters show only your own', async () => {
      await bob('POST', '/servers/', minimalServer('bob-server'));
      for (const p of ['/servers/', '/servers/detail/', `/servers/?uuid=${server.uuid}`, '/servers/?name=alice-server', '/servers/?tag__name=alice-tag']) {
        const r = await bob('GET', p);
        assert.ok(!r.body.objects.some((s: any) => s.uuid === server.uuid), p);
      }
      assert.equal((await bob('GET', '/servers/?tag__name=alice-tag')).body.meta.total_count, 0);
      assert.equal((await bob('GET', '/servers/?limit=0')).body.meta.total_count, 1);
      assert.equal((await alice('GET', '/servers/?limit=0')).body.meta.total_count, 1);
    });

    test("another account's drive, tag, IP and VLAN cannot be attached, and look like missing ones (regression: it hung)", async () => {
      const missing = '00000000-0000-4000-8000-000000000000';
      const attach = (drive: string) => bob('POST', '/servers/', minimalServer('thief', { drives: [{ drive, device: 'virtio', dev_channel: '0:0' }] }));
      const theirs = await attach(disk);
      const none = await attach(missing);
      assert.equal(theirs.status, 400);
      assert.equal(theirs.body[0].error_point, none.body[0].error_point);
      assert.equal(theirs.body[0].error_message.replace(disk, 'X'), none.body[0].error_message.replace(missing, 'X'));
      const subs = await alice('POST', '/subscriptions/', {
        objects: [
          { resource: 'ip', amount: 1, period: '1 month' },
          { resource: 'vlan', period: '1 month' },
        ],
      });
      const owned = (kind: string) => subs.body.objects.find((x: any) => x.resource === kind).subscribed_object;
      const ip = await bob('POST', '/servers/', minimalServer('thief', { nics: [{ ip_v4_conf: { conf: 'static', ip: owned('ip') } }] }));
      assert.equal(ip.status, 400, ip.text);
      const vlan = await bob('POST', '/servers/', minimalServer('thief', { nics: [{ vlan: owned('vlan') }] }));
      assert.equal(vlan.status, 400, vlan.text);
      const aliceTag = server.tags[0].uuid;
      const tagged = await bob('POST', '/servers/', minimalServer('thief', { tags: [aliceTag] }));
      assert.equal(tagged.status, 400);
      assert.equal((await bob('GET', `/drives/${disk}/`)).status, 404);
      assert.equal((await alice('GET', `/drives/${disk}/`)).body.status, 'unmounted');
      // Attaching to one's own server by edit is refused the same way.
      const mine = (await bob('GET', '/servers/?limit=0')).body.objects[0];
      const edit = await bob('PUT', `/servers/${mine.uuid}/`, { drives: [{ drive: disk, device: 'virtio', dev_channel: '0:0' }] });
      assert.equal(edit.status, 400);
    });

    test("availability groups show only one's own running servers", async () => {
      await alice('POST', `/servers/${server.uuid}/action/?do=start`);
      await waitForStatus({ ...t, call: alice }, server.uuid, 'running');
      const groups = await bob('GET', '/servers/availability_groups/');
      assert.ok(!groups.body.flat().includes(server.uuid));
      assert.ok((await alice('GET', '/servers/availability_groups/')).body.flat().includes(server.uuid));
      await alice('POST', `/servers/${server.uuid}/action/?do=stop`);
      await waitForStatus({ ...t, call: alice }, server.uuid, 'stopped');
    });
  });
}
