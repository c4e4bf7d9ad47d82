import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const BOB = { email: 'bob-part@example.com', password: 'bob-part-password' };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXuF8cWpDpOw6kDStD+CXVFfS5n0UNhy8XVAC8x3wlz alice';

// Regressions found by a tenant: a grantee with EDIT failed with 400 on a server with unshared drives or the owner's
// keys; with EDIT he attached his own drive; with CLONE he copied a disk nobody shared with him; and he saw the uuids
// of unshared servers in mounted_on (and of unshared drives, VLANs and keys on the shared server).
for (const db of databases()) {
  describe(`a grantee sees and edits only the shared part of a server [${db.name}]`, { timeout: 60000 }, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let tag: string;
    let acl: string;
    let shared: string;
    let hidden: string;
    let vlan: string;
    let server: any;
    let other: string;

    async function drive(call: TestServer['call'], name: string, tags: string[] = [], media = 'disk') {
      const d = await call('POST', '/drives/', { name, size: GiB, media, tags });
      assert.equal(d.status, 201, d.text);
      const uuid = d.body.objects[0].uuid as string;
      await waitFor(async () => ['unmounted', 'mounted'].includes((await call('GET', `/drives/${uuid}/`)).body.status), 10000, 'drive');
      return uuid;
    }

    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
      bob = t.as(BOB.email, BOB.password);
      tag = (await t.call('POST', '/tags/', { name: 'to-bob' })).body.objects[0].uuid;
      acl = (await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: BOB.email }], rules: ['LIST', 'EDIT'], tags: [tag] })).body.objects[0].uuid;
      shared = await drive(t.call, 'shared-cd', [tag], 'cdrom');
      hidden = await drive(t.call, 'hidden-disk');
      const key = (await t.call('POST', '/keypairs/', { name: 'alice-key', public_key: KEY })).body.objects[0].uuid;
      vlan = (await t.call('POST', '/subscriptions/', { resource: 'vlan', period: '1 month' })).body.objects[0].subscribed_object;
      const made = await t.call(
        'POST',
        '/servers/',
        minimalServer('alice-shares', {
          tags: [tag],
          pubkeys: [key],
          nics: [{ vlan }, { ip_v4_conf: { conf: 'dhcp' } }],
          drives: [
            { drive: hidden, device: 'virtio', dev_channel: '0:0', boot_order: 1 },
            { drive: shared, device: 'ide', dev_channel: '0:0', boot_order: 2 },
          ],
        }),
      );
      assert.equal(made.status, 201, made.text);
      server = made.body.objects[0];
      // A second server of hers, not shared, holding the shared cdrom too.
      const cd = [{ drive: shared, device: 'ide', dev_channel: '0:0' }];
      other = (await t.call('POST', '/servers/', minimalServer('alice-private', { drives: cd }))).body.objects[0].uuid;
    });
    after(async () => t?.close());

    test('he is shown only what is shared with him: no unshared drive, VLAN NIC, key, server in mounted_on, or password', async () => {
      const seen = (await bob('GET', `/servers/${server.uuid}/`)).body;
      assert.deepEqual(
        seen.drives.map((d: any) => d.drive.uuid),
        [shared],
      );
      assert.deepEqual(seen.pubkeys, []);
      assert.deepEqual(
        seen.nics.map((n: any) => n.mac),
        [server.nics[1].mac],
        'the NIC on her VLAN is not shown',
      );
      assert.equal(seen.vnc_password, null);
      const listed = (await bob('GET', '/servers/detail/')).body.objects.find((s: any) => s.uuid === server.uuid);
      assert.deepEqual(
        listed.drives.map((d: any) => d.drive.uuid),
        [shared],
      );
      const cd = (await bob('GET', `/drives/${shared}/`)).body;
      assert.deepEqual(
        cd.mounted_on.map((m: any) => m.uuid),
        [server.uuid],
        'not her unshared server',
      );
      const mine = (await t.call('GET', `/drives/${shared}/`)).body;
      assert.deepEqual(mine.mounted_on.map((m: any) => m.uuid).sort(), [server.uuid, other].sort(), 'the owner sees both');
      assert.equal((await bob('GET', `/drives/${hidden}/`)).status, 404);
      // Running, the runtime shows him only the NIC he is shown, in GET, in the short list and in /runtime/.
      assert.equal((await t.call('POST', `/servers/${server.uuid}/action/?do=start`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${server.uuid}/`)).body.status === 'running', 10000, 'running');
      const macs = (rt: any) => rt.nics.map((n: any) => n.mac);
      assert.deepEqual(macs((await t.call('GET', `/servers/${server.uuid}/runtime/`)).body).length, 2);
      assert.deepEqual(macs((await bob('GET', `/servers/${server.uuid}/`)).body.runtime), [server.nics[1].mac]);
      assert.deepEqual(macs((await bob('GET', `/servers/${server.uuid}/runtime/`)).body), [server.nics[1].mac]);
      assert.deepEqual(macs((await bob('GET', '/servers/')).body.objects.find((s: any) => s.uuid === server.uuid).runtime), [server.nics[1].mac]);
      assert.equal((await t.call('POST', `/servers/${server.uuid}/action/?do=stop`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${server.uuid}/`)).body.status === 'stopped', 10000, 'stopped');
    });

    test('his edit works and keeps what he was not shown as it was', async () => {
      const seen = (await bob('GET', `/servers/${server.uuid}/`)).body;
      // He sends back what he was shown, changed: the usual GET, modify, PUT.
      const put = await bob('PUT', `/servers/${server.uuid}/`, { ...seen, name: 'renamed by bob', mem: 2 * 536870912 });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(
        put.body.drives.map((d: any) => d.drive.uuid),
        [shared],
      );
      assert.equal(put.body.vnc_password, null);
      const after = (await t.call('GET', `/servers/${server.uuid}/`)).body;
      assert.equal(after.name, 'renamed by bob');
      assert.equal(after.mem, 2 * 536870912);
      assert.deepEqual(after.drives, server.drives, 'both drives, where they were');
      assert.deepEqual(after.pubkeys, server.pubkeys);
      assert.deepEqual(
        after.nics.map((n: any) => [n.mac, n.vlan?.uuid ?? null]),
        server.nics.map((n: any) => [n.mac, n.vlan?.uuid ?? null]),
      );
      assert.equal(after.vnc_password, 'testserver');
      assert.deepEqual(
        after.tags.map((x: any) => x.uuid),
        [tag],
      );
      // Dropping the drive he sees detaches it; the hidden one stays.
      const drop = await bob('PUT', `/servers/${server.uuid}/`, { drives: [] });
      assert.equal(drop.status, 200, drop.text);
      assert.deepEqual(
        (await t.call('GET', `/servers/${server.uuid}/`)).body.drives.map((d: any) => d.drive.uuid),
        [hidden],
      );
      assert.equal((await t.call('PUT', `/servers/${server.uuid}/`, { drives: server.drives })).status, 200);
    });

    test('his edit cannot set the password without OPEN_VNC, nor give the server his own drive, key or VLAN', async () => {
      const before = (await t.call('GET', `/servers/${server.uuid}/`)).body;
      const vnc = await bob('PUT', `/servers/${server.uuid}/`, { vnc_password: 'bob-knows' });
      assert.equal(vnc.status, 403);
      assert.equal(vnc.body[0].error_point, 'vnc_password');
      const his = await drive(bob, 'bobs-disk');
      const withHis = await bob('PUT', `/servers/${server.uuid}/`, { drives: [{ drive: his, device: 'virtio', dev_channel: '0:1' }] });
      assert.equal(withHis.status, 403, withHis.text);
      assert.match(withHis.body[0].error_message, new RegExp(his));
      const key = (await bob('POST', '/keypairs/', { name: 'bob-key', public_key: KEY.replace('alice', 'bob') })).body.objects[0].uuid;
      assert.equal((await bob('PUT', `/servers/${server.uuid}/`, { pubkeys: [key] })).status, 403);
      const bobVlan = (await bob('POST', '/subscriptions/', { resource: 'vlan', period: '1 month' })).body.objects[0].subscribed_object;
      const net = await bob('PUT', `/servers/${server.uuid}/`, { nics: [{ vlan: bobVlan }] });
      assert.equal(net.status, 403, net.text);
      assert.equal(net.body[0].error_point, 'nics.vlan');
      // The hidden disk, named by its uuid, does not exist for him.
      const guess = await bob('PUT', `/servers/${server.uuid}/`, { drives: [{ drive: hidden, device: 'virtio', dev_channel: '1:0' }] });
      assert.equal(guess.status, 400, guess.text);
      assert.deepEqual((await t.call('GET', `/servers/${server.uuid}/`)).body, before, 'nothing changed');
      // With OPEN_VNC he may set the password and sees it.
      await t.call('PUT', `/acls/${acl}/`, { rules: ['LIST', 'EDIT', 'OPEN_VNC'] });
      const set = await bob('PUT', `/servers/${server.uuid}/`, { vnc_password: 'bob-knows' });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.vnc_password, 'bob-knows');
      await t.call('PUT', `/acls/${acl}/`, { rules: ['LIST', 'EDIT'] });
    });

    test('his CLONE never copies a disk he could not clone himself: 403 naming it; with CLONE on it, the clone is his', async () => {
      await t.call('PUT', `/acls/${acl}/`, { rules: ['LIST', 'CLONE'] });
      const refused = await bob('POST', `/servers/${server.uuid}/action/?do=clone`, {});
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.body[0].error_message, new RegExp(hidden));
      assert.equal((await bob('GET', '/servers/?limit=0')).body.meta.total_count, 1, 'no clone was made');
      // Shared for cloning too, the disk is copied into his account; the password is not hers.
      await t.call('PUT', `/drives/${hidden}/`, { name: 'hidden-disk', size: GiB, media: 'disk', tags: [tag] });
      const cloned = await bob('POST', `/servers/${server.uuid}/action/?do=clone`, {});
      assert.equal(cloned.status, 202, cloned.text);
      const disk = cloned.body.drives.find((d: any) => d.drive.uuid !== shared);
      assert.ok(disk && disk.drive.uuid !== hidden);
      assert.equal((await bob('GET', `/drives/${disk.drive.uuid}/`)).body.owner.uuid, (await t.running.svc.store.users.byEmail(BOB.email))!.uuid);
      assert.notEqual(cloned.body.vnc_password, 'testserver');
      await t.call('PUT', `/drives/${hidden}/`, { name: 'hidden-disk', size: GiB, media: 'disk', tags: [] });
      await t.call('PUT', `/acls/${acl}/`, { rules: ['LIST', 'EDIT'] });
    });

    test("neither an IP's server nor a VLAN's servers name a server he cannot see", async () => {
      await t.call('PUT', `/vlans/${vlan}/`, { tags: [tag] });
      assert.equal((await t.call('PUT', `/servers/${other}/`, { nics: [{ vlan }] })).status, 200);
      assert.deepEqual(
        (await bob('GET', `/vlans/${vlan}/`)).body.servers.map((s: any) => s.uuid),
        [server.uuid],
      );
      assert.deepEqual(
        (await t.call('GET', `/vlans/${vlan}/`)).body.servers.map((s: any) => s.uuid),
        [server.uuid, other],
      );
      // Shared now, the VLAN's NIC shows on the shared server.
      assert.deepEqual(
        (await bob('GET', `/servers/${server.uuid}/`)).body.nics.map((n: any) => n.vlan?.uuid ?? null),
        [vlan, null],
      );
      const ip = (await t.call('POST', '/subscriptions/', { resource: 'ip', amount: 1, period: '1 month' })).body.objects[0].subscribed_object;
      await t.call('PUT', `/ips/${ip}/`, { tags: [tag] });
      assert.equal((await t.call('PUT', `/servers/${other}/`, { nics: [{ ip_v4_conf: { conf: 'static', ip } }] })).status, 200);
      assert.equal((await bob('GET', `/ips/${ip}/`)).body.server, null);
      for (const path of ['/ips/', '/ips/detail/']) {
        const listed = (await bob('GET', path)).body.objects.find((x: any) => x.uuid === ip);
        assert.equal(listed.server, null, path);
      }
      assert.equal((await t.call('GET', '/ips/')).body.objects.find((x: any) => x.uuid === ip).server.uuid, other);
      assert.equal((await t.call('GET', `/ips/${ip}/`)).body.server.uuid, other);
      await t.call('PUT', `/vlans/${vlan}/`, { tags: [] });
    });

    test("a snapshot's drive and a drive's snapshots name only what he may see", async () => {
      const snaps = await t.call('POST', '/snapshots/', { objects: [{ drive: hidden, tags: [tag] }, { drive: shared, tags: [tag] }, { drive: shared }] });
      assert.equal(snaps.status, 201, snaps.text);
      const [ofHidden, sharedSnap, privateSnap] = snaps.body.objects.map((x: any) => x.uuid);
      assert.equal((await bob('GET', `/snapshots/${ofHidden}/`)).body.drive, null);
      assert.equal((await t.call('GET', `/snapshots/${ofHidden}/`)).body.drive.uuid, hidden);
      assert.equal((await bob('GET', `/snapshots/${sharedSnap}/`)).body.drive.uuid, shared);
      assert.deepEqual(
        (await bob('GET', `/drives/${shared}/`)).body.snapshots.map((x: any) => x.uuid),
        [sharedSnap],
      );
      assert.deepEqual(
        (await t.call('GET', `/drives/${shared}/`)).body.snapshots.map((x: any) => x.uuid),
        [sharedSnap, privateSnap],
      );
    });
  });
}
