import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { GiB, otherUser, readyDrive, waitForDrive } from './helpers/drives.ts';
import { cloneDriveRecord } from '../src/commands/drives.ts';

const img = (t: TestServer, uuid: string) => path.join(t.dataDir, 'drives', `${uuid}.img`);

function writeAt(file: string, offset: number, text: string): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(text), 0, text.length, offset);
  fs.closeSync(fd);
}

function readAt(file: string, offset: number, length: number): string {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(length);
  fs.readSync(fd, b, 0, length, offset);
  fs.closeSync(fd);
  return b.toString();
}

for (const db of databases()) {
  describe(`drive clone [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('202 with the new drive in cloning_dst; then unmounted with the same content; the source is unchanged', async () => {
      const src = await readyDrive(t, { name: 'orig', meta: { a: '1' }, affinities: ['ssd'] });
      writeAt(img(t, src.uuid), 1000, 'content of the source');
      const c = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, null);
      assert.equal(c.status, 202);
      assert.equal(c.body.objects.length, 1);
      const d = c.body.objects[0];
      assert.equal(d.status, 'cloning_dst');
      assert.notEqual(d.uuid, src.uuid);
      assert.equal(d.name, 'orig'); // clone naming NONE
      assert.deepEqual(d.meta, { a: '1' });
      assert.deepEqual(d.affinities, ['ssd']);
      assert.equal(d.size, src.size);
      assert.equal(d.storage_type, 'dssd');
      await waitForDrive(t, d.uuid, 'unmounted');
      await waitForDrive(t, src.uuid, 'unmounted');
      assert.equal(readAt(img(t, d.uuid), 1000, 21), 'content of the source');
      // the copy is its own: writing to it leaves the source alone
      writeAt(img(t, d.uuid), 1000, 'changed');
      assert.equal(readAt(img(t, src.uuid), 1000, 21), 'content of the source');
    });

    test('while the bytes are copied the source is cloning_src, and goes back once the last copy is done', async () => {
      const src = await readyDrive(t, { name: 'busy-source' });
      const admin = (await t.running.svc.store.users.byEmail(ADMIN.email))!;
      const svc = t.running.svc;
      const fresh = (await svc.store.drives.get(src.uuid))!;
      // two clone records committed, their copies not yet started
      const dsts = await svc.store.transaction(async (trx) => [
        await cloneDriveRecord(svc, { user: admin.uuid }, fresh, {}, trx),
        await cloneDriveRecord(svc, { user: admin.uuid }, fresh, {}, trx),
      ]);
      assert.equal((await t.call('GET', `/drives/${src.uuid}/`)).body.status, 'cloning_src');
      for (const u of dsts) assert.equal((await t.call('GET', `/drives/${u}/`)).body.status, 'cloning_dst');
      // a drive being copied can be neither deleted nor resized
      assert.equal((await t.call('DELETE', `/drives/${src.uuid}/`)).status, 403);
      assert.equal((await t.call('DELETE', `/drives/${dsts[0]}/`)).status, 403);
      assert.equal((await t.call('PUT', `/drives/${src.uuid}/`, { size: 2 * GiB })).status, 403);
      await svc.cloneDriveBytes([dsts[0]!]);
      assert.equal((await t.call('GET', `/drives/${src.uuid}/`)).body.status, 'cloning_src');
      await svc.cloneDriveBytes([dsts[1]!]);
      assert.equal((await t.call('GET', `/drives/${src.uuid}/`)).body.status, 'unmounted');
      for (const u of dsts) assert.equal((await t.call('GET', `/drives/${u}/`)).body.status, 'unmounted');
    });

    test('size same or bigger, storage_type, media and name given; avoid is a hint', async () => {
      const src = await readyDrive(t, { name: 'sized', size: GiB });
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      const smaller = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, { size: GiB / 2 });
      assert.equal(smaller.status, 400);
      assert.equal(smaller.body[0].error_point, 'size');
      const badType = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, { storage_type: 'tape' });
      assert.equal(badType.status, 400);
      assert.equal((await t.call('GET', '/drives/?limit=0')).body.meta.total_count, before);
      const c = await t.call('POST', `/drives/${src.uuid}/action/?do=clone&avoid=${src.uuid},not-a-uuid`, {
        name: 'bigger',
        size: 2 * GiB + 1,
        storage_type: 'zadara',
        media: 'cdrom',
      });
      assert.equal(c.status, 202);
      const d = c.body.objects[0];
      assert.equal(d.name, 'bigger');
      assert.equal(d.size, 2 * GiB + 16384);
      assert.equal(d.storage_type, 'zadara');
      assert.equal(d.media, 'cdrom');
      await waitForDrive(t, d.uuid, 'unmounted');
      assert.equal(fs.statSync(img(t, d.uuid)).size, 2 * GiB + 16384);
    });

    test("another account's drive cannot be cloned; unknown actions are refused", async () => {
      const src = await readyDrive(t, { name: 'private' });
      const other = await otherUser(t);
      assert.equal((await other('POST', `/drives/${src.uuid}/action/?do=clone`, {})).status, 404);
      const bad = await t.call('POST', `/drives/${src.uuid}/action/?do=explode`, {});
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'do');
      assert.equal((await t.call('POST', `/drives/${src.uuid}/action/`, {})).status, 400);
    });

    test('a copy that fails leaves no drive behind and puts the source back', async () => {
      const src = await readyDrive(t, { name: 'broken' });
      // its bytes become an unreadable qcow2: the copy (qemu-img convert, or a missing qemu-img) fails
      fs.rmSync(img(t, src.uuid));
      fs.writeFileSync(path.join(t.dataDir, 'drives', `${src.uuid}.qcow2`), 'not an image');
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      const c = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, {});
      assert.equal(c.status, 202);
      await waitFor(async () => (await t.call('GET', `/drives/${c.body.objects[0].uuid}/`)).status === 404, 10000, 'the failed clone to go');
      await waitForDrive(t, src.uuid, 'unmounted');
      assert.equal((await t.call('GET', '/drives/?limit=0')).body.meta.total_count, before);
      assert.ok(!fs.readdirSync(path.join(t.dataDir, 'drives')).some((f) => f.startsWith(c.body.objects[0].uuid)));
    });

    test('a server clone gives its cloned disks their bytes; mounted once copied', async () => {
      const disk = await readyDrive(t, { name: 'boot' });
      writeAt(img(t, disk.uuid), 0, 'boot sector');
      const s = (
        await t.call('POST', '/servers/', minimalServer('to-clone', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: disk.uuid }] }))
      ).body.objects[0];
      const c = await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, {});
      assert.equal(c.status, 202);
      const copy = c.body.drives[0].drive.uuid;
      assert.notEqual(copy, disk.uuid);
      await waitForDrive(t, copy, 'mounted');
      assert.equal(readAt(img(t, copy), 0, 11), 'boot sector');
      await waitForDrive(t, disk.uuid, 'mounted');
    });
  });
}
