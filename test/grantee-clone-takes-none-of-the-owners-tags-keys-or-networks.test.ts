import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const BOB = { email: 'bob-clones@example.com', password: 'bob-clones-password' };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXuF8cWpDpOw6kDStD+CXVFfS5n0UNhy8XVAC8x3wlz alice';

// Regression: a grantee's clone of a shared server kept the owner's tags (so it was listed among the owner's tag
// resources and fell under the owner's ACLs), the owner's SSH key, the owner's private VLAN and CD-ROM.
for (const db of databases()) {
  describe(`a grantee's clone takes none of the owner's tags, keys, VLANs or CD-ROMs [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
      bob = t.as(BOB.email, BOB.password);
    });
    after(async () => t.close());

    test("the clone is the grantee's alone; the owner's own clone keeps everything", async () => {
      const tag = (await t.call('POST', '/tags/', { objects: [{ name: 'shared-with-bob' }] })).body.objects[0].uuid as string;
      const key = (await t.call('POST', '/keypairs/', { objects: [{ name: 'alice-key', public_key: KEY }] })).body.objects[0].uuid as string;
      const subs = await t.call('POST', '/subscriptions/', { objects: [{ resource: 'vlan', period: '1 month' }] });
      const vlan = subs.body.objects[0].subscribed_object as string;
      const cd = (await t.call('POST', '/drives/', { name: 'alice-cd', size: GiB, media: 'cdrom' })).body.objects[0].uuid as string;
      await waitFor(async () => ((await t.call('GET', `/drives/${cd}/`)).body.status === 'unmounted' ? true : null), 10000, 'the cdrom');
      const source = (
        await t.call(
          'POST',
          '/servers/',
          minimalServer('alice-shares', {
            tags: [tag],
            pubkeys: [key],
            nics: [{ ip_v4_conf: { conf: 'dhcp' } }, { vlan }],
            drives: [{ drive: cd, device: 'ide', dev_channel: '0:0', boot_order: 1 }],
          }),
        )
      ).body.objects[0];
      const acl = await t.call('POST', '/acls/', {
        objects: [{ name: 'bob clones', grantees: [{ email: BOB.email }], rules: [{ permission: 'LIST' }, { permission: 'CLONE' }], tags: [{ uuid: tag }] }],
      });
      assert.equal(acl.status, 201);

      const cloned = await bob('POST', `/servers/${source.uuid}/action/?do=clone`, { name: 'bobs-own' });
      assert.equal(cloned.status, 202);
      const mine = (await bob('GET', `/servers/${cloned.body.uuid}/`)).body;
      assert.equal(mine.owner.uuid, (await t.running.svc.store.users.byEmail(BOB.email))!.uuid);
      assert.deepEqual(mine.tags, []);
      assert.deepEqual(mine.pubkeys, []);
      assert.deepEqual(mine.drives, []);
      assert.deepEqual(
        mine.nics.map((n: any) => [n.ip_v4_conf, n.vlan]),
        [[{ conf: 'dhcp', ip: null }, null]],
        "the public NIC stays, the owner's VLAN does not",
      );
      const resources = (await t.call('GET', `/tags/${tag}/`)).body.resources.map((r: any) => r.uuid);
      assert.deepEqual(resources, [source.uuid], "the owner's tag lists only the owner's server");
      assert.deepEqual(
        (await t.call('GET', `/drives/${cd}/`)).body.mounted_on.map((m: any) => m.uuid),
        [source.uuid],
      );

      const ownClone = await t.call('POST', `/servers/${source.uuid}/action/?do=clone`, { name: 'alice-again' });
      assert.equal(ownClone.status, 202);
      const hers = (await t.call('GET', `/servers/${ownClone.body.uuid}/`)).body;
      assert.deepEqual(
        hers.tags.map((x: any) => x.uuid),
        [tag],
      );
      assert.deepEqual(
        hers.pubkeys.map((x: any) => x.uuid),
        [key],
      );
      assert.deepEqual(
        hers.drives.map((d: any) => d.drive.uuid),
        [cd],
      );
      assert.deepEqual(
        hers.nics.map((n: any) => n.vlan?.uuid ?? null),
        [null, vlan],
      );
    });
  });
}
