import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { GiB, readyDrive } from './helpers/drives.ts';

const img = (t: TestServer, uuid: string) => path.join(t.dataDir, 'drives', `${uuid}.img`);

async function grownTo(t: TestServer, uuid: string, size: number, status = 'unmounted') {
  return waitFor(
    async () => {
      const d = (await t.call('GET', `/drives/${uuid}/`)).body;
      return d.status === status && d.size === size ? d : null;
    },
    10000,
    `drive ${uuid} to be ${size} bytes and ${status}`,
  );
}

for (const db of databases()) {
  describe(`drive resize [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('PUT of a bigger size: 200 resizing with the old size, then the new size and a grown image', async () => {
      const d = await readyDrive(t, { name: 'grow', size: 2 * GiB });
      const r = await t.call('PUT', `/drives/${d.uuid}/`, { name: 'grow', media: 'disk', size: 5 * GiB });
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 'resizing');
      assert.equal(r.body.size, 2 * GiB);
      await grownTo(t, d.uuid, 5 * GiB);
      assert.equal(fs.statSync(img(t, d.uuid)).size, 5 * GiB);
    });

    test('?do=resize with the full definition: 202 {"objects": [drive resizing]}; odd sizes round up to 16 KiB', async () => {
      const d = await readyDrive(t, { name: 'act', size: 2 * GiB });
      const full = (await t.call('GET', `/drives/${d.uuid}/`)).body;
      const r = await t.call('POST', `/drives/${d.uuid}/action/?do=resize`, { ...full, size: 4 * GiB + 100, meta: { renamed: 'yes' } });
      assert.equal(r.status, 202);
      assert.equal(r.body.objects.length, 1);
      assert.equal(r.body.objects[0].status, 'resizing');
      assert.deepEqual(r.body.objects[0].meta, { renamed: 'yes' });
      const done = await grownTo(t, d.uuid, 4 * GiB + 16384);
      assert.deepEqual(done.meta, { renamed: 'yes' });
      assert.equal(fs.statSync(img(t, d.uuid)).size, 4 * GiB + 16384);
    });

    test('shrinking and sizes beyond the storage type limit are refused and change nothing', async () => {
      const d = await readyDrive(t, { name: 'fixed', size: 2 * GiB });
      const shrink = await t.call('PUT', `/drives/${d.uuid}/`, { size: GiB });
      assert.equal(shrink.status, 400);
      assert.equal(shrink.body[0].error_point, 'size');
      const huge = await t.call('POST', `/drives/${d.uuid}/action/?do=resize`, { size: 10 ** 15 });
      assert.equal(huge.status, 400);
      const notInt = await t.call('PUT', `/drives/${d.uuid}/`, { size: 'big' });
      assert.equal(notInt.status, 400);
      const after = (await t.call('GET', `/drives/${d.uuid}/`)).body;
      assert.equal(after.size, 2 * GiB);
      assert.equal(after.status, 'unmounted');
      assert.equal(fs.statSync(img(t, d.uuid)).size, 2 * GiB);
    });

    test('a drive on a stopped server may be resized and stays mounted; on a running server the action is refused', async () => {
      const d = await readyDrive(t, { name: 'attached', size: GiB });
      const s = (
        await t.call('POST', '/servers/', minimalServer('holder', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: d.uuid }] }))
      ).body.objects[0];
      const r = await t.call('POST', `/drives/${d.uuid}/action/?do=resize`, { size: 2 * GiB });
      assert.equal(r.status, 202);
      await grownTo(t, d.uuid, 2 * GiB, 'mounted');
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      const refused = await t.call('POST', `/drives/${d.uuid}/action/?do=resize`, { size: 3 * GiB });
      assert.equal(refused.status, 403);
      const ignored = await t.call('PUT', `/drives/${d.uuid}/`, { size: 3 * GiB, name: 'renamed' });
      assert.equal(ignored.status, 200);
      assert.equal(ignored.body.size, 2 * GiB);
      assert.equal(ignored.body.name, 'renamed');
      assert.equal(ignored.body.status, 'mounted');
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
    });
  });
}
