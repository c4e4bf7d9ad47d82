import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { otherUser, waitForDrive } from './helpers/drives.ts';

const CDROM = '11111111-1111-4111-8111-111111111111';
const DISK = '22222222-2222-4222-8222-222222222222';
const MISSING = '33333333-3333-4333-8333-333333333333';
const MiB = 1024 * 1024;

function hasQemuImg(): boolean {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** An operator's library folder: a raw cdrom, a disk (qcow2 when qemu-img is there), one broken and one missing image. */
function makeLibrary(dir: string): { diskFormat: 'qcow2' | 'raw' } {
  fs.mkdirSync(path.join(dir, 'img'), { recursive: true });
  const iso = path.join(dir, 'img', 'live.iso');
  fs.writeFileSync(iso, Buffer.concat([Buffer.from('CD001 live image'), Buffer.alloc(2 * MiB - 16)]));
  const raw = path.join(dir, 'img', 'disk.raw');
  fs.writeFileSync(raw, Buffer.alloc(4 * MiB));
  const fd = fs.openSync(raw, 'r+');
  fs.writeSync(fd, Buffer.from('disk marker'), 0, 11, MiB);
  fs.closeSync(fd);
  const qcow = hasQemuImg();
  if (qcow) execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(dir, 'img', 'disk.qcow2')]);
  const common = { arch: '64', os: 'linux', paid: false, favourite: false, url: 'https://example.com/', description: 'test image' };
  fs.writeFileSync(
    path.join(dir, 'test.json'),
    JSON.stringify([
      {
        uuid: CDROM,
        name: 'Live CD',
        media: 'cdrom',
        image: 'img/live.iso',
        image_type: 'live',
        category: ['general'],
        distribution: 'Debian',
        version: '12',
        ...common,
      },
      {
        uuid: DISK,
        name: 'Tiny Disk',
        media: 'disk',
        image: qcow ? 'img/disk.qcow2' : 'img/disk.raw',
        image_type: 'preinst',
        category: ['general', 'webserver'],
        distribution: 'Busybox',
        version: '1.36',
        ...common,
      },
      { uuid: MISSING, name: 'Not built', media: 'disk', image: 'img/none.raw', ...common },
      { uuid: 'not-a-uuid', name: 'Broken', media: 'disk', image: 'img/disk.raw' },
    ]),
  );
  fs.writeFileSync(path.join(dir, 'garbage.json'), '{ not json');
  return { diskFormat: qcow ? 'qcow2' : 'raw' };
}

for (const db of databases()) {
  describe(`library drives [${db.name}]`, () => {
    let t: TestServer;
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-lib-'));
      makeLibrary(dir);
      t = await startServer({ OPENSIGMA_LIBRARY_DIR: dir }, db);
    });
    after(async () => {
      await t.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('listed by /libdrives/ (not /drives/), with their descriptions; broken or unbuilt ones are left out', async () => {
      const l = await t.call('GET', `/libdrives/?limit=0&uuid=${CDROM},${DISK},${MISSING}`);
      assert.equal(l.status, 200);
      assert.deepEqual(
        l.body.objects.map((d: any) => d.uuid),
        [CDROM, DISK],
      );
      const cd = l.body.objects[0];
      assert.equal(cd.owner, null);
      assert.equal(cd.resource_uri, `/api/2.0/libdrives/${CDROM}/`);
      assert.equal(cd.storage_type, null);
      assert.equal(cd.status, 'unmounted');
      assert.equal(cd.media, 'cdrom');
      assert.equal(cd.size, 536870912); // the image is smaller than the smallest drive
      assert.deepEqual(cd.category, ['general']);
      assert.equal(cd.image_type, 'live');
      assert.deepEqual((await t.call('GET', `/libdrives/detail/?limit=0&uuid=${CDROM},${DISK}`)).body, l.body);
      const mine = await t.call('GET', '/drives/?limit=0');
      assert.ok(!mine.body.objects.some((d: any) => d.uuid === CDROM || d.uuid === DISK));
      const through = await t.call('GET', `/drives/${DISK}/`);
      assert.equal(through.status, 200);
      assert.equal(through.body.owner, null);
      assert.equal(through.body.resource_uri, `/api/2.0/drives/${DISK}/`);
      assert.equal((await t.call('GET', `/libdrives/${MISSING}/`)).status, 404);
      const schema = await t.call('GET', '/libdrives/schema/');
      assert.equal(schema.status, 200);
      assert.ok(schema.body.filtering.os);
    });

    test('filters of the schema: exact, comma-OR, category membership, name__icontains', async () => {
      const ids = async (q: string) => (await t.call('GET', `/libdrives/?limit=0&uuid=${CDROM},${DISK}&${q}`)).body.objects.map((d: any) => d.uuid);
      assert.deepEqual(await ids('distribution=Debian'), [CDROM]);
      assert.deepEqual(await ids('version=1.36'), [DISK]);
      assert.deepEqual(await ids('image_type=live,preinst'), [CDROM, DISK]);
      assert.deepEqual(await ids('category=webserver'), [DISK]);
      assert.deepEqual(await ids('category=general'), [CDROM, DISK]);
      assert.deepEqual(await ids('name__icontains=tiny'), [DISK]);
      assert.deepEqual(await ids('name=Live CD'), [CDROM]);
      assert.deepEqual(await ids('os=windows'), []);
      assert.deepEqual(await ids('arch=64&os=linux&category=webserver'), [DISK]);
      const page = await t.call('GET', `/libdrives/?uuid=${CDROM},${DISK}&limit=1&offset=1`);
      assert.deepEqual(page.body.meta, { limit: 1, offset: 1, total_count: 2 });
      assert.equal(page.body.objects[0].uuid, DISK);
    });

    test('a cdrom attaches directly; a disk must be cloned first (403); library drives are read-only', async () => {
      const ok = await t.call('POST', '/servers/', minimalServer('live', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'ide', drive: CDROM }] }));
      assert.equal(ok.status, 201);
      const got = await t.call('GET', `/libdrives/${CDROM}/`);
      assert.deepEqual(got.body.mounted_on, [{ resource_uri: `/api/2.0/servers/${ok.body.objects[0].uuid}/`, uuid: ok.body.objects[0].uuid }]);
      assert.equal(got.body.status, 'unmounted');
      // another account sees its own servers only
      const other = await otherUser(t);
      assert.deepEqual((await other('GET', `/libdrives/${CDROM}/`)).body.mounted_on, []);
      const refused = await t.call(
        'POST',
        '/servers/',
        minimalServer('disk', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: DISK }] }),
      );
      assert.equal(refused.status, 403);
      assert.equal((await t.call('PUT', `/drives/${DISK}/`, { name: 'mine now' })).status, 403);
      assert.equal((await t.call('DELETE', `/drives/${DISK}/`)).status, 403);
      assert.equal((await t.call('GET', `/libdrives/${DISK}/`)).body.name, 'Tiny Disk');
    });

    test('clone into the account: descriptive fields go to meta, the bytes come along (raw), and it downloads', async () => {
      const c = await t.call('POST', `/libdrives/${DISK}/action/?do=clone`, { name: 'my disk' });
      assert.equal(c.status, 202);
      const d = c.body.objects[0];
      assert.equal(d.name, 'my disk');
      assert.equal(d.owner.uuid, (await t.running.svc.store.users.byEmail(ADMIN.email))!.uuid);
      assert.equal(d.media, 'disk');
      assert.equal(d.size, 536870912);
      assert.equal(d.meta.os, 'linux');
      assert.equal(d.meta.arch, '64');
      assert.equal(d.meta.distribution, 'Busybox');
      assert.equal(d.meta.version, '1.36');
      assert.equal(d.meta.image_type, 'preinst');
      assert.equal(d.meta.category, 'general,webserver');
      assert.equal(d.meta.description, 'test image');
      await waitForDrive(t, d.uuid, 'unmounted');
      const file = path.join(t.dataDir, 'drives', `${d.uuid}.img`);
      assert.equal(fs.statSync(file).size, 536870912);
      const res = await fetch(`${t.api}/drives/${d.uuid}/download/`, {
        headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`, range: `bytes=${MiB}-${MiB + 10}` },
      });
      assert.equal(res.status, 206);
      assert.equal(await res.text(), 'disk marker');
      // the clone attaches like any drive of the account
      const s = await t.call(
        'POST',
        '/servers/',
        minimalServer('from-lib', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: d.uuid }] }),
      );
      assert.equal(s.status, 201);
      // through /drives/ too, and /libdrives/ clones only library drives
      const again = await t.call('POST', `/drives/${CDROM}/action/?do=clone`, {});
      assert.equal(again.status, 202);
      assert.equal(again.body.objects[0].name, 'Live CD');
      assert.equal((await t.call('POST', `/libdrives/${d.uuid}/action/?do=clone`, {})).status, 404);
    });
  });
}
