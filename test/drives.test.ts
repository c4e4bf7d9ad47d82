import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { GiB, otherUser, readyDrive, waitForDrive } from './helpers/drives.ts';

for (const db of databases()) {
  describe(`drives [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('create one or many: 201 creating, then unmounted; short and detail lists; get', async () => {
      const c = await t.call('POST', '/drives/', { objects: [0, 1, 2].map((i) => ({ name: `bulk_${i}`, media: 'disk', size: GiB })) });
      assert.equal(c.status, 201);
      assert.equal(c.body.objects.length, 3);
      for (const d of c.body.objects) assert.equal(d.status, 'creating');
      for (const d of c.body.objects) await waitForDrive(t, d.uuid, 'unmounted');
      const bare = await t.call('POST', '/drives/', { name: 'bare', media: 'cdrom', size: '1073741824' });
      assert.equal(bare.status, 201);
      assert.equal(bare.body.objects[0].media, 'cdrom');
      assert.equal(bare.body.objects[0].size, GiB);
      const list = await t.call('GET', '/drives/?limit=0');
      assert.equal(list.status, 200);
      assert.ok(list.body.meta.total_count >= 4);
      assert.deepEqual(Object.keys(list.body.objects[0]).sort(), ['owner', 'resource_uri', 'status', 'uuid']);
      const fields = await t.call('GET', '/drives/?fields=uuid,status&limit=0');
      assert.deepEqual(Object.keys(fields.body.objects[0]).sort(), ['status', 'uuid']);
      const detail = await t.call('GET', `/drives/detail/?name=bulk_1`);
      assert.equal(detail.body.meta.total_count, 1);
      assert.equal(detail.body.objects[0].name, 'bulk_1');
      const got = await t.call('GET', `/drives/${c.body.objects[0].uuid}/`);
      assert.equal(got.body.status, 'unmounted');
      assert.equal(got.body.runtime.is_snapshotable, true);
    });

    test('bad input changes nothing: missing fields, sizes out of the storage type limits, unknown storage type', async () => {
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      const missing = await t.call('POST', '/drives/', { objects: [{ name: 'x', media: 'disk' }] });
      assert.equal(missing.status, 400);
      assert.deepEqual(missing.body, [{ error_message: 'This field is required', error_point: 'size', error_type: 'validation' }]);
      const small = await t.call('POST', '/drives/', {
        objects: [
          { name: 'ok', media: 'disk', size: GiB },
          { name: 'tiny', media: 'disk', size: 1024 },
        ],
      });
      assert.equal(small.status, 400);
      assert.equal(small.body[0].error_point, 'size');
      const zadara = await t.call('POST', '/drives/', { name: 'z', media: 'disk', size: 536870912, storage_type: 'zadara' });
      assert.equal(zadara.status, 400);
      const st = await t.call('POST', '/drives/', { name: 'z', media: 'disk', size: GiB, storage_type: 'floppy' });
      assert.equal(st.status, 400);
      assert.equal(st.body[0].error_point, 'storage_type');
      const media = await t.call('POST', '/drives/', { name: 'z', media: 'tape', size: GiB });
      assert.equal(media.status, 400);
      const json = await t.call('POST', '/drives/', '{"objects": [');
      assert.equal(json.status, 400);
      assert.equal((await t.call('GET', '/drives/?limit=0')).body.meta.total_count, before);
    });

    test('storage_type, iops and affinities are kept; sizes round up to 16 KiB', async () => {
      const c = await t.call('POST', '/drives/', { name: 'nv', media: 'disk', size: GiB + 1, storage_type: 'nvme', iops: 1000, affinities: ['ssd'] });
      assert.equal(c.status, 201);
      const d = c.body.objects[0];
      assert.equal(d.storage_type, 'nvme');
      assert.equal(d.runtime.storage_type, 'nvme');
      assert.equal(d.iops, 1000);
      assert.deepEqual(d.affinities, ['ssd']);
      assert.equal(d.size, GiB + 16384);
      const bad = await t.call('POST', '/drives/', { name: 'nv', media: 'disk', size: GiB, iops: 10 ** 9 });
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'iops');
    });

    test('edit: name, media, meta, allow_multimount; storage_type cannot change; libraries and other accounts are off limits', async () => {
      const d = await readyDrive(t, { name: 'edit_me' });
      const e = await t.call('PUT', `/drives/${d.uuid}/`, { name: 'edited', media: 'cdrom', size: d.size, meta: { a: 'b\nc' }, allow_multimount: true });
      assert.equal(e.status, 200);
      assert.equal(e.body.name, 'edited');
      assert.equal(e.body.media, 'cdrom');
      assert.deepEqual(e.body.meta, { a: 'b\nc' });
      assert.equal(e.body.allow_multimount, true);
      assert.equal(e.body.status, 'unmounted');
      const st = await t.call('PUT', `/drives/${d.uuid}/`, { storage_type: 'nvme' });
      assert.equal(st.status, 400);
      // PUT of the whole GET representation (what libcloud does) works
      const back = await t.call('PUT', `/drives/${d.uuid}/`, (await t.call('GET', `/drives/${d.uuid}/`)).body);
      assert.equal(back.status, 200);
      const other = await otherUser(t);
      assert.equal((await other('GET', `/drives/${d.uuid}/`)).status, 404);
      assert.equal((await other('PUT', `/drives/${d.uuid}/`, { name: 'mine' })).status, 404);
      assert.equal((await other('DELETE', `/drives/${d.uuid}/`)).status, 404);
      const list = await other('GET', '/drives/?limit=0');
      assert.ok(!list.body.objects.some((x: any) => x.uuid === d.uuid));
      assert.equal((await t.call('GET', `/drives/${d.uuid}/`)).body.name, 'edited');
    });

    test('a drive mounted on a running server: only name, meta, tags, allow_multimount apply; resize and delete refused', async () => {
      const d = await readyDrive(t, { name: 'live' });
      const s = (
        await t.call('POST', '/servers/', minimalServer('with-drive', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: d.uuid }] }))
      ).body.objects[0];
      assert.equal((await t.call('GET', `/drives/${d.uuid}/`)).body.status, 'mounted');
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      const e = await t.call('PUT', `/drives/${d.uuid}/`, { name: 'renamed', media: 'cdrom', size: 2 * GiB, meta: { k: 'v' } });
      assert.equal(e.status, 200);
      assert.equal(e.body.name, 'renamed');
      assert.deepEqual(e.body.meta, { k: 'v' });
      assert.equal(e.body.media, 'disk');
      assert.equal(e.body.size, GiB);
      assert.equal(e.body.status, 'mounted');
      assert.deepEqual(e.body.mounted_on, [{ resource_uri: `/api/2.0/servers/${s.uuid}/`, uuid: s.uuid }]);
      const resize = await t.call('POST', `/drives/${d.uuid}/action/?do=resize`, { ...e.body, size: 2 * GiB });
      assert.equal(resize.status, 403);
      assert.equal(resize.body[0].error_type, 'permission');
      const del = await t.call('DELETE', `/drives/${d.uuid}/`);
      assert.equal(del.status, 403);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      // on a stopped server it may be deleted, and disappears from the server
      assert.equal((await t.call('DELETE', `/drives/${d.uuid}/`)).status, 204);
      assert.equal((await t.call('GET', `/drives/${d.uuid}/`)).status, 404);
      assert.deepEqual((await t.call('GET', `/servers/${s.uuid}/`)).body.drives, []);
    });

    test('delete one; bulk delete checks every drive first and deletes all or none', async () => {
      const a = await readyDrive(t, { name: 'a' });
      const b = await readyDrive(t, { name: 'b' });
      const c = await readyDrive(t, { name: 'c' });
      const missing = '00000000-0000-4000-8000-000000000000';
      const refused = await t.call('DELETE', '/drives/', { objects: [{ uuid: a.uuid }, { uuid: missing }] });
      assert.equal(refused.status, 404);
      assert.equal((await t.call('GET', `/drives/${a.uuid}/`)).status, 200);
      const bad = await t.call('DELETE', '/drives/', { objects: [] });
      assert.equal(bad.status, 400);
      const bulk = await t.call('DELETE', '/drives/', { objects: [{ uuid: a.uuid }, { uuid: b.uuid }] });
      assert.equal(bulk.status, 204);
      assert.equal(bulk.text, '');
      assert.equal((await t.call('GET', `/drives/${a.uuid}/`)).status, 404);
      assert.equal((await t.call('GET', `/drives/${b.uuid}/`)).status, 404);
      assert.equal((await t.call('DELETE', `/drives/${c.uuid}/`)).status, 204);
      assert.equal((await t.call('DELETE', `/drives/${c.uuid}/`)).status, 404);
    });

    test('schema and availability groups', async () => {
      const s = await t.call('GET', '/drives/schema/');
      assert.equal(s.status, 200);
      assert.deepEqual(s.body.filtering, { name: 'exact', name__contains: 'exact', tag: 'exact', uuid: 'exact' });
      assert.deepEqual((await t.call('GET', '/drives/availability_groups/')).body, []);
      const d = await readyDrive(t);
      assert.deepEqual((await t.call('GET', `/drives/availability_groups/${d.uuid}/`)).body, []);
    });
  });
}
