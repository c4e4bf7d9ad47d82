import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

for (const db of databases()) {
  describe(`snapshots [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    const drive = async (name: string) => {
      const uuid = (await t.call('POST', '/drives/', { name, size: GiB, media: 'disk' })).body.objects[0].uuid as string;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid;
    };
    const image = (uuid: string) => t.running.svc.storage.find(uuid)!.path;
    const writeAt0 = (uuid: string, text: string) => {
      const fd = fs.openSync(image(uuid), 'r+');
      fs.writeSync(fd, Buffer.from(text), 0, text.length, 0);
      fs.closeSync(fd);
    };
    const readAt0 = (uuid: string, n: number) => {
      const fd = fs.openSync(image(uuid), 'r');
      const b = Buffer.alloc(n);
      fs.readSync(fd, b, 0, n, 0);
      fs.closeSync(fd);
      return b.toString();
    };
    const available = (uuid: string) =>
      waitFor(async () => ((await t.call('GET', `/snapshots/${uuid}/`)).body.status === 'available' ? true : null), 10000, 'snapshot');

    test('create (creating -> available), list by drive, drive shows its snapshots, edit, clone keeps the content of that moment', async () => {
      const d = await drive('snap-src');
      writeAt0(d, 'before');
      const c = await t.call('POST', '/snapshots/', { objects: [{ drive: d, meta: { key: 'val' }, name: 'first_snapshot' }] });
      assert.equal(c.status, 201);
      const s = c.body.objects[0];
      assert.deepEqual(Object.keys(s), [
        'allocated_size',
        'drive',
        'grantees',
        'meta',
        'name',
        'owner',
        'permissions',
        'resource_uri',
        'status',
        'tags',
        'timestamp',
        'uuid',
      ]);
      assert.deepEqual(s.drive, { resource_uri: `/api/2.0/drives/${d}/`, uuid: d });
      assert.match(s.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      assert.ok(['creating', 'available'].includes(s.status));
      await available(s.uuid);
      assert.equal(typeof (await t.call('GET', `/snapshots/${s.uuid}/`)).body.allocated_size, 'number');
      writeAt0(d, 'AFTER!');

      const unnamed = (await t.call('POST', '/snapshots/', { drive: d })).body.objects[0];
      assert.match(unnamed.name, new RegExp(`^${d}__\\d{4}-\\d\\d-\\d\\d__\\d\\d_\\d\\d_\\d\\d$`));
      await available(unnamed.uuid);

      const byDrive = await t.call('GET', `/snapshots/detail/?limit=0&drive=${d}`);
      assert.deepEqual(
        byDrive.body.objects.map((x: any) => x.uuid),
        [s.uuid, unnamed.uuid],
      );
      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.snapshots, [
        { resource_uri: `/api/2.0/snapshots/${s.uuid}/`, uuid: s.uuid },
        { resource_uri: `/api/2.0/snapshots/${unnamed.uuid}/`, uuid: unnamed.uuid },
      ]);

      const edit = await t.call('PUT', `/snapshots/${s.uuid}/`, {
        drive: d,
        meta: { key: 'val_changed', new_key: 'new_key_value' },
        name: 'first_snapshot_renamed',
      });
      assert.equal(edit.status, 200);
      assert.equal(edit.body.name, 'first_snapshot_renamed');
      assert.deepEqual(edit.body.meta, { key: 'val_changed', new_key: 'new_key_value' });

      const clone = await t.call('POST', `/snapshots/${s.uuid}/action/?do=clone&avoid=${d}`, {});
      assert.equal(clone.status, 202);
      assert.equal(clone.body.status, 'cloning_dst');
      assert.equal(clone.body.name, 'first_snapshot_renamed');
      assert.equal(clone.body.size, GiB);
      const nd = clone.body.uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${nd}/`)).body.status === 'unmounted', 10000, 'clone');
      assert.equal(readAt0(nd, 6), 'before');
      assert.equal(readAt0(d, 6), 'AFTER!');
      const job = (await t.call('GET', '/jobs/?limit=0')).body.objects.find((j: any) => j.resources[1] === `/api/2.0/drives/${nd}/`);
      assert.equal(job.state, 'success');

      // named clone, and bulk delete
      const named = await t.call('POST', `/snapshots/${unnamed.uuid}/action/?do=clone`, { name: 'from-snap', media: 'cdrom' });
      assert.equal(named.body.name, 'from-snap');
      assert.equal(named.body.media, 'cdrom');
      await waitFor(async () => (await t.call('GET', `/drives/${named.body.uuid}/`)).body.status === 'unmounted', 10000, 'clone');
      assert.equal((await t.call('DELETE', '/snapshots/', { objects: [{ uuid: s.uuid }, { uuid: unnamed.uuid }] })).status, 204);
      assert.equal((await t.call('GET', `/snapshots/${s.uuid}/`)).status, 404);
      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.snapshots, []);
    });

    test('deleting a drive deletes its snapshots', async () => {
      const d = await drive('snap-doomed');
      const s = (await t.call('POST', '/snapshots/', { drive: d })).body.objects[0];
      await available(s.uuid);
      assert.equal((await t.call('DELETE', `/drives/${d}/`)).status, 204);
      await waitFor(async () => ((await t.call('GET', `/snapshots/${s.uuid}/`)).status === 404 ? true : null), 5000, 'snapshot gone');
    });

    test('bad input changes nothing: no drive, unknown or foreign drive, wrong types, bad action, another account', async () => {
      const d = await drive('snap-bad');
      const before = (await t.call('GET', '/snapshots/?limit=0')).body.meta.total_count;
      for (const item of [
        {},
        { drive: 'nope' },
        { drive: '00000000-0000-4000-8000-000000000000' },
        { drive: d, name: [] },
        { drive: d, meta: 'x' },
        { drive: d, tags: ['00000000-0000-4000-8000-000000000000'] },
      ]) {
        const r = await t.call('POST', '/snapshots/', { objects: [{ drive: d }, item] });
        assert.equal(r.status, 400, JSON.stringify(item));
        assert.ok(Array.isArray(r.body));
      }
      assert.equal((await t.call('GET', '/snapshots/?limit=0')).body.meta.total_count, before);
      const s = (await t.call('POST', '/snapshots/', { drive: d, name: 'keep' })).body.objects[0];
      await available(s.uuid);
      assert.equal((await t.call('POST', `/snapshots/${s.uuid}/action/?do=explode`, {})).status, 400);
      assert.equal((await t.call('POST', `/snapshots/${s.uuid}/action/`, {})).status, 400);
      assert.equal((await t.call('PUT', `/snapshots/${s.uuid}/`, { meta: 5 })).status, 400);
      assert.equal((await t.call('DELETE', '/snapshots/', { objects: [{ uuid: s.uuid }, { uuid: '00000000-0000-4000-8000-000000000000' }] })).status, 404);
      assert.equal((await t.call('GET', `/snapshots/${s.uuid}/`)).body.name, 'keep');

      await t.running.svc.store.users.create('snoop-snap@example.com', 'snoop-pw');
      const o = t.as('snoop-snap@example.com', 'snoop-pw');
      assert.equal((await o('POST', '/snapshots/', { drive: d })).status, 400);
      assert.equal((await o('GET', `/snapshots/${s.uuid}/`)).status, 404);
      assert.equal((await o('PUT', `/snapshots/${s.uuid}/`, { name: 'x' })).status, 404);
      assert.equal((await o('DELETE', `/snapshots/${s.uuid}/`)).status, 404);
      assert.equal((await o('POST', `/snapshots/${s.uuid}/action/?do=clone`, {})).status, 404);
      assert.equal((await o('GET', '/snapshots/?limit=0')).body.meta.total_count, 0);
      assert.equal((await t.call('GET', `/snapshots/${s.uuid}/`)).body.name, 'keep');
    });
  });
}
