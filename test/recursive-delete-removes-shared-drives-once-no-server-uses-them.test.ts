import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

// Regression (pycloudsigma's test_server_clone_with_drive): a server with a disk and a cdrom is cloned, so the clone
// shares the cdrom; deleting the original with recurse=all_drives kept the cdrom (the clone used it), and deleting
// the clone with recurse=disks did not ask for cdroms: the cdrom stayed for ever.
for (const db of databases()) {
  describe(`a recursive delete removes drives shared with another server once no server uses them [${db.name}]`, { timeout: 60000 }, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t?.close());

    async function drive(name: string, media: string) {
      const uuid = (await t.call('POST', '/drives/', { name, size: GiB, media })).body.objects[0].uuid as string;
      await waitFor(async () => ['unmounted', 'mounted'].includes((await t.call('GET', `/drives/${uuid}/`)).body.status), 10000, name);
      return uuid;
    }
    const exists = async (uuid: string) => (await t.call('GET', `/drives/${uuid}/`)).status === 200;
    const settled = (uuid: string) =>
      waitFor(async () => ['unmounted', 'mounted'].includes((await t.call('GET', `/drives/${uuid}/`)).body.status), 10000, 'a clone');
    async function serverWith(disk: string, cd: string) {
      const attach = [
        { drive: disk, device: 'virtio', dev_channel: '0:0', boot_order: 1 },
        { drive: cd, device: 'ide', dev_channel: '0:0', boot_order: 2 },
      ];
      return (await t.call('POST', '/servers/', minimalServer('with-disk-and-cd', { drives: attach }))).body.objects[0].uuid as string;
    }

    test('clone, delete the original with all_drives and the clone with disks: every drive is gone', async () => {
      const disk = await drive('disk', 'disk');
      const cd = await drive('cd', 'cdrom');
      const original = await serverWith(disk, cd);
      const clone = await t.call('POST', `/servers/${original}/action/?do=clone`, {});
      assert.equal(clone.status, 202, clone.text);
      const cloneDisk = clone.body.drives.find((d: any) => d.drive.uuid !== cd).drive.uuid as string;
      assert.deepEqual(clone.body.drives.map((d: any) => d.drive.uuid).sort(), [cloneDisk, cd].sort(), 'the clone shares the cdrom');
      await settled(cloneDisk);
      await settled(disk);

      assert.equal((await t.call('DELETE', `/servers/${original}/?recurse=all_drives`)).status, 204);
      assert.equal(await exists(disk), false);
      assert.equal(await exists(cd), true, 'the clone still uses the cdrom');
      assert.deepEqual(
        (await t.call('GET', `/drives/${cd}/`)).body.mounted_on.map((m: any) => m.uuid),
        [clone.body.uuid],
      );

      assert.equal((await t.call('DELETE', `/servers/${clone.body.uuid}/?recurse=disks`)).status, 204);
      assert.equal(await exists(cloneDisk), false);
      assert.equal(await exists(cd), false, 'asked for by the first delete, it goes with the last server holding it');
    });

    test('a drive no recursive delete asked for stays; one asked for also goes when the last server lets go of it by an edit', async () => {
      const disk = await drive('disk-2', 'disk');
      const cd = await drive('cd-2', 'cdrom');
      const original = await serverWith(disk, cd);
      const clone = (await t.call('POST', `/servers/${original}/action/?do=clone`, {})).body;
      const cloneDisk = clone.drives.find((d: any) => d.drive.uuid !== cd).drive.uuid as string;
      await settled(cloneDisk);
      await settled(disk);
      // recurse=disks does not ask for the cdrom: deleting the clone afterwards leaves it.
      assert.equal((await t.call('DELETE', `/servers/${original}/?recurse=disks`)).status, 204);
      assert.equal((await t.call('DELETE', `/servers/${clone.uuid}/`)).status, 204);
      assert.equal(await exists(cd), true);
      assert.equal((await t.call('GET', `/drives/${cd}/`)).body.status, 'unmounted');
      assert.equal(await exists(cloneDisk), true);

      const a = await serverWith(cloneDisk, cd);
      const b = (await t.call('POST', '/servers/', minimalServer('b', { drives: [{ drive: cd, device: 'ide', dev_channel: '0:0' }] }))).body.objects[0].uuid;
      assert.equal((await t.call('DELETE', `/servers/${a}/?recurse=cdroms`)).status, 204);
      assert.equal(await exists(cd), true, 'b still holds it');
      assert.equal(await exists(cloneDisk), true, 'recurse=cdroms leaves disks');
      assert.equal((await t.call('PUT', `/servers/${b}/`, { drives: [] })).status, 200);
      assert.equal(await exists(cd), false, 'detached from the last server, it goes');
    });

    test("a grantee's recursive delete takes only the drives he may delete", async () => {
      await t.running.svc.store.users.create('bob-deletes@example.com', 'bob-deletes-password');
      const bob = t.as('bob-deletes@example.com', 'bob-deletes-password');
      const made = await t.call('POST', '/tags/', { objects: [{ name: 'delete-with-drive' }, { name: 'delete-server-only' }] });
      const [both, only] = made.body.objects.map((x: any) => x.uuid);
      await t.call('POST', '/acls/', { name: 'bob deletes', grantees: [{ email: 'bob-deletes@example.com' }], rules: ['LIST', 'DELETE'], tags: [both] });
      await t.call('POST', '/acls/', { name: 'bob sees', grantees: [{ email: 'bob-deletes@example.com' }], rules: ['LIST'], tags: [only] });
      const disk = await drive('granted-disk', 'disk');
      const cd = await drive('kept-cd', 'cdrom');
      await t.call('PUT', `/drives/${disk}/`, { name: 'granted-disk', size: GiB, media: 'disk', tags: [both] });
      await t.call('PUT', `/drives/${cd}/`, { name: 'kept-cd', size: GiB, media: 'cdrom', tags: [only] });
      const s = await serverWith(disk, cd);
      assert.equal((await t.call('PUT', `/servers/${s}/`, { tags: [both] })).status, 200);
      assert.equal((await bob('DELETE', `/servers/${s}/?recurse=all_drives`)).status, 204);
      assert.equal((await t.call('GET', `/servers/${s}/`)).status, 404);
      assert.equal(await exists(disk), false, 'DELETE on the disk: it goes');
      assert.equal(await exists(cd), true, 'LIST alone on the cdrom: it stays');
      assert.equal((await t.call('GET', `/drives/${cd}/`)).body.status, 'unmounted');
    });
  });
}
