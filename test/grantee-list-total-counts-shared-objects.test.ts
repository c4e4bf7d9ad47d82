import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

const B = { email: 'bob-count@example.com', password: 'bob-count-password' };

// A grantee's list holds his own objects and those shared with him: total_count must count both.
for (const db of databases()) {
  describe(`a grantee's list total counts the objects shared with him [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(B.email, B.password);
      const tag = (await t.call('POST', '/tags/', { name: 'shared-count' })).body.objects[0].uuid;
      await t.call('POST', '/servers/', [
        minimalServer('alice-shared-1', { tags: [tag] }),
        minimalServer('alice-shared-2', { tags: [tag] }),
        minimalServer('alice-private'),
      ]);
      const acl = await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: B.email }], rules: [{ permission: 'LIST' }], tags: [tag] });
      assert.equal(acl.status, 201, acl.text);
      assert.equal((await t.as(B.email, B.password)('POST', '/servers/', minimalServer('bob-own'))).status, 201);
    });
    after(async () => t?.close());

    test('total_count equals the objects listed, short and detail, paged or not', async () => {
      const bob = t.as(B.email, B.password);
      for (const path of ['/servers/', '/servers/detail/']) {
        const all = (await bob('GET', `${path}?limit=0`)).body;
        assert.deepEqual(all.objects.map((s: any) => s.name).sort(), ['alice-shared-1', 'alice-shared-2', 'bob-own']);
        assert.equal(all.meta.total_count, 3);
        const page = (await bob('GET', `${path}?limit=2`)).body;
        assert.equal(page.objects.length, 2);
        assert.equal(page.meta.total_count, 3);
      }
    });
  });
}
