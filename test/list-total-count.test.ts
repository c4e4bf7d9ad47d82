import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

/** total_count of unfiltered lists comes from maintained counts: it must stay exact through every kind of write. */
for (const db of databases()) {
  describe(`list total_count stays exact [${db.name}]`, () => {
    let t: TestServer;
    let other: TestServer['call'];
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
      other = t.as('other@example.com', 'other-password');
    });
    after(async () => t.close());

    const total = async (call: TestServer['call'], p = '/servers/') => (await call('GET', p)).body.meta.total_count as number;

    test('creates, bulk creates, deletes and a failed bulk create', async () => {
      assert.equal(await total(t.call), 0);
      const made = [];
      for (const n of ['a', 'b', 'c']) made.push((await t.call('POST', '/servers/', minimalServer(`count-${n}`))).body.objects[0].uuid);
      assert.equal(await total(t.call), 3);
      assert.equal(await total(t.call, '/servers/detail/?limit=1'), 3);
      const bulk = await t.call('POST', '/servers/', { objects: [1, 2, 3, 4, 5].map((i) => minimalServer(`bulk-${i}`)) });
      assert.equal(bulk.status, 201);
      assert.equal(await total(t.call), 8);
      // One bad item: nothing is created, and the count does not move.
      const bad = await t.call('POST', '/servers/', { objects: [minimalServer('fine'), { name: 'no-cpu', mem: 536870912, vnc_password: 'x' }] });
      assert.equal(bad.status, 400);
      assert.equal(await total(t.call), 8);
      assert.equal((await t.call('DELETE', `/servers/${made[0]}/`)).status, 204);
      assert.equal(await total(t.call), 7);
      assert.equal((await t.call('GET', '/servers/?limit=0')).body.objects.length, 7);
    });

    test('filtered lists count their matches; each owner counts only their own', async () => {
      assert.equal(await total(t.call, '/servers/?name__contains=bulk'), 5);
      assert.equal(await total(t.call, '/servers/?name=count-b,count-c'), 2);
      assert.equal(await total(other), 0);
      await other('POST', '/servers/', minimalServer('theirs'));
      assert.equal(await total(other), 1);
      assert.equal(await total(t.call), 7);
    });

    test('drives are counted the same way', async () => {
      const before = await total(t.call, '/drives/');
      const d = await t.call('POST', '/drives/', { name: 'count-drive', size: 1073741824, media: 'disk' });
      assert.equal(d.status, 201, d.text);
      assert.equal(await total(t.call, '/drives/'), before + 1);
      // Let the drive's bytes be allocated before the server closes.
      await waitFor(async () => (await t.call('GET', `/drives/${d.body.objects[0].uuid}/`)).body.status === 'unmounted');
    });
  });
}
