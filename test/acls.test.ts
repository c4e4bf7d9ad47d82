import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;
const B = { email: 'bob-acl@example.com', password: 'bob-acl-password' };

for (const db of databases()) {
  describe(`ACLs between two accounts [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let bobUuid: string;
    let aliceUuid: string;
    before(async () => {
      t = await startServer({}, db);
      bobUuid = (await t.running.svc.store.users.create(B.email, B.password)).uuid;
      aliceUuid = (await t.running.svc.store.users.byEmail('admin@example.com'))!.uuid;
      bob = t.as(B.email, B.password);
    });
    after(async () => t.close());

    async function drive(name: string, tags: string[] = []) {
      const d = await t.call('POST', '/drives/', { name, size: GiB, media: 'disk', tags });
      assert.equal(d.status, 201);
      const uuid = d.body.objects[0].uuid as string;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid;
    }
    const attach = (d: string) => ({ drives: [{ drive: d, device: 'virtio', dev_channel: '0:0', boot_order: 1 }] });

    test('without an ACL, B sees nothing of A: 404 on get, absent from lists, cannot attach or download', async () => {
      const d = await drive('alice-private');
      const get = await bob('GET', `/drives/${d}/`);
      assert.equal(get.status, 404);
      assert.equal(get.body[0].error_type, 'notexist');
      assert.equal((await bob('GET', '/drives/?limit=0')).body.meta.total_count, 0);
      const mount = await bob('POST', '/servers/', minimalServer('bob-steals', attach(d)));
      assert.equal(mount.status, 400);
      assert.equal((await bob('GET', '/servers/?limit=0')).body.meta.total_count, 0, 'nothing was created');
      assert.equal((await bob('GET', `/drives/${d}/download/`, undefined, { range: 'bytes=0-15' })).status, 404);
      assert.equal((await bob('PUT', `/drives/${d}/`, { name: 'pwned', size: GiB, media: 'disk' })).status, 404);
      assert.equal((await t.call('GET', `/drives/${d}/`)).body.name, 'alice-private');
    });

    test('an ACL on a tag grants exactly its permissions: LIST+EDIT shows and edits, ATTACH mounts, CLONE downloads', async () => {
      const tag = (await t.call('POST', '/tags/', { objects: [{ name: 'shared' }] })).body.objects[0];
      const d = await drive('alice-shared', [tag.uuid]);
      const acl = await t.call('POST', '/acls/', {
        objects: [{ name: 'to bob', grantees: [{ email: B.email }], rules: [{ permission: 'LIST' }, { permission: 'EDIT' }], tags: [{ uuid: tag.uuid }] }],
      });
      assert.equal(acl.status, 201);
      const a = acl.body.objects[0];
      assert.deepEqual(a.grantees, [{ email: B.email, resource_uri: { resource_uri: `/api/2.0/user/${bobUuid}/`, uuid: bobUuid }, uuid: bobUuid }]);
      assert.deepEqual(a.rules, [{ permission: 'LIST' }, { permission: 'EDIT' }]);
      assert.deepEqual(a.tags, [{ resource_uri: `/api/2.0/tags/${tag.uuid}/`, uuid: tag.uuid }]);

      // owner's view: grantees; grantee's view: permissions
      const own = (await t.call('GET', `/drives/${d}/`)).body;
      assert.deepEqual(own.grantees, [{ permissions: ['EDIT', 'LIST'], user: { email: null, resource_uri: `/api/2.0/user/${bobUuid}/`, uuid: bobUuid } }]);
      assert.deepEqual(own.permissions, []);
      const foreign = await bob('GET', `/drives/${d}/`);
      assert.equal(foreign.status, 200);
      assert.deepEqual(foreign.body.permissions, ['EDIT', 'LIST']);
      assert.deepEqual(foreign.body.grantees, []);
      assert.equal(foreign.body.owner.uuid, aliceUuid);
      const listed = await bob('GET', '/drives/?limit=0');
      assert.deepEqual(
        listed.body.objects.map((x: any) => x.uuid),
        [d],
      );

      // no ATTACH yet: cannot mount, cannot download
      assert.equal((await bob('POST', '/servers/', minimalServer('bob-mount', attach(d)))).status, 400);
      assert.equal((await bob('GET', `/drives/${d}/download/`, undefined, { range: 'bytes=0-15' })).status, 403);

      const put = await t.call('PUT', `/acls/${a.uuid}/`, { rules: [{ permission: 'LIST' }, { permission: 'EDIT' }, { permission: 'ATTACH' }] });
      assert.equal(put.status, 200);
      assert.deepEqual((await bob('GET', `/drives/${d}/`)).body.permissions, ['ATTACH', 'EDIT', 'LIST']);
      const mount = await bob('POST', '/servers/', minimalServer('bob-mount', attach(d)));
      assert.equal(mount.status, 201);
      assert.equal(mount.body.objects[0].drives[0].drive.uuid, d);
      // ATTACH names mounting: a download is a copy of the bytes, which only CLONE grants
      assert.equal((await bob('GET', `/drives/${d}/download/`, undefined, { range: 'bytes=0-15' })).status, 403);
      await t.call('PUT', `/acls/${a.uuid}/`, { rules: ['LIST', 'EDIT', 'ATTACH', 'CLONE'] });
      const dl = await bob('GET', `/drives/${d}/download/`, undefined, { range: 'bytes=0-15' });
      assert.equal(dl.status, 206);

      // a drive of A without the tag stays invisible
      const other = await drive('alice-untagged');
      assert.equal((await bob('GET', `/drives/${other}/`)).status, 404);

      // deleting the ACL takes it all back
      assert.equal((await t.call('DELETE', `/acls/${a.uuid}/`)).status, 204);
      assert.equal((await bob('GET', `/drives/${d}/`)).status, 404);
      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.grantees, []);
      assert.equal((await t.call('GET', `/acls/${a.uuid}/`)).status, 404);
    });

    test('server permissions: LIST shows a server, START is needed to start it', async () => {
      const tag = (await t.call('POST', '/tags/', { name: 'srv-shared' })).body.objects[0];
      const s = (await t.call('POST', '/servers/', minimalServer('alice-srv', { tags: [tag.uuid] }))).body.objects[0];
      const acl = (await t.call('POST', '/acls/', { name: 'srv', grantees: [{ uuid: bobUuid }], rules: [{ permission: 'LIST' }], tags: [tag.uuid] })).body
        .objects[0];
      assert.equal((await bob('GET', `/servers/${s.uuid}/`)).body.permissions[0], 'LIST');
      const start = await bob('POST', `/servers/${s.uuid}/action/?do=start`);
      assert.equal(start.status, 403);
      assert.equal((await t.call('GET', `/servers/${s.uuid}/`)).body.status, 'stopped');
      await t.call('PUT', `/acls/${acl.uuid}/`, { rules: ['LIST', 'START', 'STOP'] });
      assert.equal((await bob('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${s.uuid}/`)).body.status === 'running', 10000, 'running');
      assert.equal((await bob('POST', `/servers/${s.uuid}/action/?do=stop`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${s.uuid}/`)).body.status === 'stopped', 10000, 'stopped');
      assert.equal((await bob('DELETE', `/servers/${s.uuid}/`)).status, 403);
    });

    test('bad input: unknown grantee uuid, malformed email, unknown permission, foreign tag, wrong types, another account ACL', async () => {
      const before = (await t.call('GET', '/acls/?limit=0')).body.meta.total_count;
      const cases: unknown[] = [
        { name: 'x', grantees: [{ uuid: '00000000-0000-4000-8000-0000000000aa' }] },
        { name: 'x', grantees: [{ email: 'not an address' }] },
        { name: 'x', grantees: [{ uuid: 'not-a-uuid' }] },
        { name: 'x', rules: [{ permission: 'ROOT' }] },
        { name: 'x', rules: 'LIST' },
        { name: 'x', tags: ['00000000-0000-4000-8000-000000000000'] },
        { name: 'x', grantees: 'bob' },
        { name: 5.5, meta: 'x' },
      ];
      for (const c of cases) {
        const res = await t.call('POST', '/acls/', { objects: [c] });
        assert.equal(res.status, 400, JSON.stringify(c));
        assert.ok(Array.isArray(res.body) && res.body[0].error_type === 'validation');
      }
      const bobTag = (await bob('POST', '/tags/', { name: 'bobs' })).body.objects[0];
      assert.equal((await t.call('POST', '/acls/', { name: 'x', tags: [bobTag.uuid] })).status, 400);
      assert.equal((await t.call('GET', '/acls/?limit=0')).body.meta.total_count, before);
      const mine = (await t.call('POST', '/acls/', { name: 'mine' })).body.objects[0];
      assert.equal((await bob('GET', `/acls/${mine.uuid}/`)).status, 404);
      assert.equal((await bob('PUT', `/acls/${mine.uuid}/`, { name: 'x' })).status, 404);
      assert.equal((await bob('DELETE', `/acls/${mine.uuid}/`)).status, 404);
      assert.equal((await t.call('GET', `/acls/${mine.uuid}/`)).body.name, 'mine');
      assert.equal((await t.call('PUT', `/acls/${mine.uuid}/`, { rules: [{ permission: 'NOPE' }] })).status, 400);
      assert.deepEqual((await t.call('GET', `/acls/${mine.uuid}/`)).body.rules, []);
    });
  });
}
