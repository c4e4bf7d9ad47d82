import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const B = { email: 'bob-tags@example.com', password: 'bob-tags-password' };

for (const db of databases()) {
  describe(`an ACL grantee sees the owner's tags as [] [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let tag: string;
    let drive: string;
    let server: string;
    const tagRef = () => [{ resource_uri: `/api/2.0/tags/${tag}/`, uuid: tag }];

    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(B.email, B.password);
      bob = t.as(B.email, B.password);
      tag = (await t.call('POST', '/tags/', { name: 'shared-with-bob' })).body.objects[0].uuid;
      drive = (await t.call('POST', '/drives/', { name: 'alice-drive', size: GiB, media: 'disk', tags: [tag] })).body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${drive}/`)).body.status === 'unmounted', 10000, 'drive');
      server = (await t.call('POST', '/servers/', minimalServer('alice-server', { tags: [tag] }))).body.objects[0].uuid;
      const acl = await t.call('POST', '/acls/', {
        name: 'bob',
        grantees: [{ email: B.email }],
        rules: [{ permission: 'LIST' }, { permission: 'EDIT' }],
        tags: [tag],
      });
      assert.equal(acl.status, 201, acl.text);
    });
    after(async () => t?.close());

    test('get and detail lists of a shared drive and server show the grantee tags [], the owner her tags', async () => {
      const d = await bob('GET', `/drives/${drive}/`);
      assert.equal(d.status, 200);
      assert.deepEqual(d.body.tags, []);
      assert.deepEqual(d.body.permissions, ['EDIT', 'LIST']);
      assert.deepEqual((await bob('GET', '/drives/detail/?limit=0')).body.objects.find((x: any) => x.uuid === drive).tags, []);
      const s = await bob('GET', `/servers/${server}/`);
      assert.equal(s.status, 200);
      assert.deepEqual(s.body.tags, []);
      assert.deepEqual((await bob('GET', '/servers/detail/?limit=0')).body.objects.find((x: any) => x.uuid === server).tags, []);

      assert.deepEqual((await t.call('GET', `/drives/${drive}/`)).body.tags, tagRef());
      assert.deepEqual((await t.call('GET', `/servers/${server}/`)).body.tags, tagRef());
    });

    test("a grantee's read-modify-write keeps the owner's tags (and so the grantee's access)", async () => {
      const d = (await bob('GET', `/drives/${drive}/`)).body;
      const pd = await bob('PUT', `/drives/${drive}/`, { ...d, name: 'renamed-by-bob' });
      assert.equal(pd.status, 200, pd.text);
      assert.deepEqual(pd.body.tags, []);
      const s = (await bob('GET', `/servers/${server}/`)).body;
      const ps = await bob('PUT', `/servers/${server}/`, { ...s, name: 'renamed-by-bob' });
      assert.equal(ps.status, 200, ps.text);
      // Naming a tag of his own changes nothing either: tags are the owner's to set.
      const mine = (await bob('POST', '/tags/', { name: 'bobs-own' })).body.objects[0].uuid;
      assert.equal((await bob('PUT', `/drives/${drive}/`, { ...d, name: 'renamed-by-bob', tags: [mine] })).status, 200);

      const own = (await t.call('GET', `/drives/${drive}/`)).body;
      assert.equal(own.name, 'renamed-by-bob');
      assert.deepEqual(own.tags, tagRef());
      assert.equal((await t.call('GET', `/servers/${server}/`)).body.name, 'renamed-by-bob');
      assert.deepEqual((await t.call('GET', `/servers/${server}/`)).body.tags, tagRef());
      assert.equal((await bob('GET', `/drives/${drive}/`)).status, 200, 'still shared');
    });
  });
}
