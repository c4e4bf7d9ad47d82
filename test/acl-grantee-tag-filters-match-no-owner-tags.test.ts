import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const B = { email: 'bob-filters@example.com', password: 'bob-filters-password' };
const NAME = 'shared-with-bob';

// A grantee sees shared objects with tags []: tag= and tag__name= must not tell him which of the owner's tags they carry.
for (const db of databases()) {
  describe(`a grantee's tag filters match only his own tags [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let tag: string;
    const alices: Record<string, string> = {};
    const bobs: Record<string, string> = {};
    let bobTag: string;
    const uuids = (r: { body: any }) => r.body.objects.map((o: any) => o.uuid).sort();

    before(async () => {
      t = await startServer({ OPENSIGMA_IP_POOL: '203.0.113.0/24' }, db);
      await t.running.svc.store.users.create(B.email, B.password);
      bob = t.as(B.email, B.password);
      tag = (await t.call('POST', '/tags/', { name: NAME })).body.objects[0].uuid;
      alices.drives = (await t.call('POST', '/drives/', { name: 'alice-drive', size: GiB, media: 'disk', tags: [tag] })).body.objects[0].uuid;
      alices.servers = (await t.call('POST', '/servers/', minimalServer('alice-server', { tags: [tag] }))).body.objects[0].uuid;
      alices.ips = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 1, period: '1 month' }])).body.objects[0].subscribed_object;
      alices.vlans = (await t.call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 1, period: '1 month' }])).body.objects[0].subscribed_object;
      for (const kind of ['ips', 'vlans']) assert.equal((await t.call('PUT', `/${kind}/${alices[kind]}/`, { tags: [tag] })).status, 200);
      const acl = await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: B.email }], rules: [{ permission: 'LIST' }], tags: [tag] });
      assert.equal(acl.status, 201, acl.text);
      // Bob's own tag of the same name, on objects of his own.
      bobTag = (await bob('POST', '/tags/', { name: NAME })).body.objects[0].uuid;
      bobs.drives = (await bob('POST', '/drives/', { name: 'bob-drive', size: GiB, media: 'disk', tags: [bobTag] })).body.objects[0].uuid;
      bobs.servers = (await bob('POST', '/servers/', minimalServer('bob-server', { tags: [bobTag] }))).body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${alices.drives}/`)).body.status === 'unmounted', 10000, 'drive');
    });
    after(async () => t?.close());

    for (const kind of ['servers', 'drives', 'ips', 'vlans']) {
      test(`${kind}: the owner's tag matches nothing for the grantee, though he lists the shared object`, async () => {
        for (const list of [`/${kind}/`, `/${kind}/detail/`]) {
          assert.ok(uuids(await bob('GET', `${list}?limit=0`)).includes(alices[kind]), `${list} shows bob the shared object`);
          const byUuid = await bob('GET', `${list}?limit=0&tag=${tag}`);
          assert.equal(byUuid.status, 200);
          assert.deepEqual(uuids(byUuid), [], `${list}?tag=<owner's tag>`);
          assert.equal(byUuid.body.meta.total_count, 0);
          const byName = await bob('GET', `${list}?limit=0&tag__name=${NAME}`);
          assert.deepEqual(uuids(byName), bobs[kind] ? [bobs[kind]] : [], `${list}?tag__name= matches bob's own only`);
          // The owner's filters are unchanged.
          assert.deepEqual(uuids(await t.call('GET', `${list}?limit=0&tag=${tag}`)), [alices[kind]]);
          assert.deepEqual(uuids(await t.call('GET', `${list}?limit=0&tag__name=${NAME}`)), [alices[kind]]);
        }
        assert.equal((await bob('GET', `/tags/${tag}/${kind}/`)).status, 404, "the owner's tag listing is not his");
      });
    }

    test("the grantee's own tags filter his own objects", async () => {
      for (const kind of ['servers', 'drives']) {
        assert.deepEqual(uuids(await bob('GET', `/${kind}/?limit=0&tag=${bobTag}`)), [bobs[kind]]);
        assert.deepEqual(uuids(await bob('GET', `/tags/${bobTag}/${kind}/?limit=0`)), [bobs[kind]]);
      }
    });
  });
}
