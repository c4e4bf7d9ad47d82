import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

const LIB_DISK = '5c0a7b6e-3d53-4b8e-9a56-0f1a2b3c4d5e';
const LIB_CD = '6d1b8c7f-4e64-4c9f-8b67-1a2b3c4d5e6f';

for (const db of databases()) {
  describe(`server drives [${db.name}]`, () => {
    let t: TestServer;
    let libDir: string;
    before(async () => {
      // A library with one disk and one cdrom image.
      libDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-lib-'));
      for (const f of ['disk.img', 'cd.iso']) {
        fs.writeFileSync(path.join(libDir, f), '');
        fs.truncateSync(path.join(libDir, f), 1073741824);
      }
      fs.writeFileSync(
        path.join(libDir, 'test.json'),
        JSON.stringify([
          { uuid: LIB_DISK, name: 'library disk', media: 'disk', image: 'disk.img', format: 'raw' },
          { uuid: LIB_CD, name: 'library cd', media: 'cdrom', image: 'cd.iso', format: 'raw' },
        ]),
      );
      t = await startServer({ OPENSIGMA_LIBRARY_DIR: libDir }, db);
    });
    after(async () => {
      await t.close();
      fs.rmSync(libDir, { recursive: true, force: true });
    });

    const drive = async (extra: Record<string, unknown> = {}) => {
      const r = await t.call('POST', '/drives/', { name: 'd', size: 1073741824, media: 'disk', ...extra });
      assert.equal(r.status, 201, r.text);
      const uuid = r.body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid as string;
    };
    const server = async (extra: Record<string, unknown> = {}) => {
      const r = await t.call('POST', '/servers/', minimalServer('drives', extra));
      assert.equal(r.status, 201, r.text);
      return r.body.objects[0];
    };
    const at = (drive: string, dev_channel = '0:0', device = 'virtio') => ({ drive, device, dev_channel });
    const getDrive = async (uuid: string) => (await t.call('GET', `/drives/${uuid}/`)).body;

    test('attaching by edit mounts the drive on the stopped server; detaching unmounts it', async () => {
      const d = await drive();
      const s = await server();
      const r = await t.call('PUT', `/servers/${s.uuid}/`, { drives: [{ ...at(d), boot_order: 1 }] });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.drives, [
        { boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: { resource_uri: `/api/2.0/drives/${d}/`, uuid: d }, runtime: null },
      ]);
      const g = await getDrive(d);
      assert.equal(g.status, 'mounted');
      assert.deepEqual(g.mounted_on, [{ resource_uri: `/api/2.0/servers/${s.uuid}/`, uuid: s.uuid }]);
      const off = await t.call('PUT', `/servers/${s.uuid}/`, { drives: [] });
      assert.deepEqual(off.body.drives, []);
      assert.equal((await getDrive(d)).status, 'unmounted');
      assert.deepEqual((await getDrive(d)).mounted_on, []);
    });

    test('allow_multimount is respected for disks; cdroms may be shared', async () => {
      const single = await drive();
      const multi = await drive({ allow_multimount: true });
      const cd = await drive({ media: 'cdrom' });
      const s1 = await server({ drives: [at(single), at(multi, '0:1'), at(cd, '0:0', 'ide')] });
      const refused = await t.call('POST', '/servers/', minimalServer('second', { drives: [at(single)] }));
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body[0].error_type, 'permission');
      const s2 = await server({ drives: [at(multi), at(cd, '0:0', 'ide')] });
      assert.deepEqual((await getDrive(multi)).mounted_on.map((m: any) => m.uuid).sort(), [s1.uuid, s2.uuid].sort());
      assert.deepEqual((await getDrive(cd)).mounted_on.map((m: any) => m.uuid).sort(), [s1.uuid, s2.uuid].sort());
      const s3 = await server();
      const byEdit = await t.call('PUT', `/servers/${s3.uuid}/`, { drives: [at(single)] });
      assert.equal(byEdit.status, 403);
      assert.deepEqual((await t.call('GET', `/servers/${s3.uuid}/`)).body.drives, []);
      // Re-sending an attachment the server already has is fine.
      assert.equal((await t.call('PUT', `/servers/${s1.uuid}/`, { drives: s1.drives })).status, 200);
    });

    test('a library cdrom attaches directly; a library disk must be cloned first (403)', async () => {
      const disk = await t.call('POST', '/servers/', minimalServer('lib', { drives: [at(LIB_DISK)] }));
      assert.equal(disk.status, 403, disk.text);
      assert.equal(disk.body[0].error_type, 'permission');
      const cd = await server({ drives: [at(LIB_CD, '0:0', 'ide')] });
      assert.equal(cd.drives[0].drive.uuid, LIB_CD);
    });

    test('channels: unique per bus, within the bus limits; attachments come back ide, virtio, scsi', async () => {
      const [a, b, c] = [await drive(), await drive(), await drive({ media: 'cdrom' })];
      const s = await server({ drives: [at(a, '0:1'), at(b, '0:0', 'scsi'), at(c, '1:1', 'ide')] });
      assert.deepEqual(
        s.drives.map((x: any) => [x.device, x.dev_channel]),
        [
          ['ide', '1:1'],
          ['virtio', '0:1'],
          ['scsi', '0:0'],
        ],
      );
      for (const drives of [[at(a), at(b)], [at(a), at(a, '0:1')], [at(a, '0:0', 'ide'), at(b, '0:0', 'ide')], [at(a, '2:0', 'ide')], [at(a, 'x')]]) {
        const r = await t.call('PUT', `/servers/${s.uuid}/`, { drives });
        assert.equal(r.status, 400, JSON.stringify(drives));
      }
    });

    for (const recurse of ['all_drives', 'disks', 'cdroms', undefined]) {
      test(`delete ${recurse ? `with recurse=${recurse}` : 'without recurse'}`, async () => {
        const [disk, cd, shared] = [await drive(), await drive({ media: 'cdrom' }), await drive({ allow_multimount: true })];
        const s = await server({ drives: [at(disk), at(cd, '0:0', 'ide'), at(shared, '0:1')] });
        const other = await server({ drives: [at(shared)] });
        const r = await t.call('DELETE', `/servers/${s.uuid}/${recurse ? `?recurse=${recurse}` : ''}`);
        assert.equal(r.status, 204, r.text);
        const gone = (u: string) => t.call('GET', `/drives/${u}/`).then((x) => x.status === 404);
        assert.equal(await gone(disk), recurse === 'all_drives' || recurse === 'disks');
        assert.equal(await gone(cd), recurse === 'all_drives' || recurse === 'cdroms');
        // A drive still used by another server stays, attached there.
        assert.equal(await gone(shared), false);
        assert.deepEqual(
          (await getDrive(shared)).mounted_on.map((m: any) => m.uuid),
          [other.uuid],
        );
        for (const u of [disk, cd]) if (!(await gone(u))) assert.equal((await getDrive(u)).status, 'unmounted');
      });
    }

    test('a running server cannot be deleted (403) and keeps its drives; a bad recurse is 400', async () => {
      const d = await drive();
      const s = await server({ drives: [at(d)] });
      const bad = await t.call('DELETE', `/servers/${s.uuid}/?recurse=everything`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'recurse');
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      const r = await t.call('DELETE', `/servers/${s.uuid}/?recurse=all_drives`);
      assert.equal(r.status, 403);
      assert.equal(r.body[0].error_type, 'permission');
      assert.equal((await getDrive(d)).status, 'mounted');
      const running = (await t.call('GET', `/servers/${s.uuid}/`)).body;
      assert.deepEqual(running.drives[0].runtime.io.bytes_read >= 0, true);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      assert.equal((await t.call('DELETE', `/servers/${s.uuid}/?recurse=all_drives`)).status, 204);
      assert.equal((await t.call('GET', `/drives/${d}/`)).status, 404);
    });
  });
}
