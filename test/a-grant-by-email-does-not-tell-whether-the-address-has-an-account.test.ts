import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

/**
 * An ACL names its grantees by email. Answering 400 for an address without an account (and 201 for one with) told
 * anyone with an account which addresses have one. Now both are granted alike: an address without an account gets a
 * pending grantee whose uuid stays the same from one ACL to the next, and that becomes the user's uuid when the
 * account is made, so the grants apply from then on.
 */
for (const db of databases()) {
  describe(`a grant by email does not tell whether the address has an account [${db.name}]`, { timeout: 60000 }, () => {
    let t: TestServer;
    let knownUuid: string;
    before(async () => {
      t = await startServer({}, db);
      knownUuid = (await t.running.svc.store.users.create('known@example.com', 'known-pw-1')).uuid;
    });
    after(async () => t?.close());

    const grant = async (grantee: Record<string, string>, tags: string[] = []) =>
      t.call('POST', '/acls/', { objects: [{ name: 'share', grantees: [grantee], rules: [{ permission: 'LIST' }], tags }] });
    /** The answer with the grantee's uuid masked: what tells one address from another must be nothing else. */
    const shape = (acl: { grantees: Array<{ email: string; uuid: string }> }) =>
      JSON.stringify(acl.grantees.map((g) => ({ ...g, email: '@', uuid: 'u', resource_uri: { ...(g as any).resource_uri, uuid: 'u', resource_uri: 'r' } })));

    test('an address with an account and one without are answered alike, each with a uuid that stays the same', async () => {
      const known = await grant({ email: 'known@example.com' });
      const unknown = await grant({ email: 'Nobody-Yet@example.com' });
      assert.equal(known.status, 201, known.text);
      assert.equal(unknown.status, 201, unknown.text);
      const k = known.body.objects[0];
      const u = unknown.body.objects[0];
      assert.deepEqual(Object.keys(u).sort(), Object.keys(k).sort());
      assert.equal(shape(u), shape(k));
      assert.equal(k.grantees[0].uuid, knownUuid);
      assert.equal(u.grantees[0].email, 'nobody-yet@example.com');
      assert.match(u.grantees[0].uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

      // A second ACL names the same uuid, as it would for a user, and so does a grant by that uuid.
      const again = (await grant({ email: 'nobody-yet@example.com' })).body.objects[0];
      assert.equal(again.grantees[0].uuid, u.grantees[0].uuid);
      const byUuid = await grant({ uuid: u.grantees[0].uuid });
      assert.equal(byUuid.status, 201, byUuid.text);
      assert.deepEqual(byUuid.body.objects[0].grantees, u.grantees);
      assert.equal((await grant({ uuid: '00000000-0000-4000-8000-00000000beef' })).status, 400, 'a uuid this cloud never handed out');
    });

    test('the account made later for the address takes that uuid, and sees what was shared with it', async () => {
      const tag = (await t.call('POST', '/tags/', { objects: [{ name: 'for-later' }] })).body.objects[0];
      const d = (await t.call('POST', '/drives/', { name: 'shared-ahead', size: GiB, media: 'disk', tags: [tag.uuid] })).body.objects[0].uuid as string;
      await waitFor(async () => (await t.call('GET', `/drives/${d}/`)).body.status === 'unmounted', 10000, 'the drive');
      const acl = (await grant({ email: 'later@example.com' }, [tag.uuid])).body.objects[0];
      const pending = acl.grantees[0].uuid as string;

      const user = await t.running.svc.store.users.create('later@example.com', 'later-pw-1');
      assert.equal(user.uuid, pending);
      const later = t.as('later@example.com', 'later-pw-1');
      const seen = await later('GET', `/drives/${d}/`);
      assert.equal(seen.status, 200, seen.text);
      assert.deepEqual(seen.body.permissions, ['LIST']);
      // The owner's ACL now shows the user as any other.
      assert.deepEqual((await t.call('GET', `/acls/${acl.uuid}/`)).body.grantees, acl.grantees);
    });

    test('a refused ACL leaves no pending grantee behind', async () => {
      const r = await t.call('POST', '/acls/', { objects: [{ name: 'x', grantees: [{ email: 'rolled-back@example.com' }], rules: [{ permission: 'ROOT' }] }] });
      assert.equal(r.status, 400);
      const rows = await t.running.svc.store.dialect.db.selectFrom('pending_grantees').selectAll().where('email', '=', 'rolled-back@example.com').execute();
      assert.deepEqual(rows, []);
    });
  });
}
