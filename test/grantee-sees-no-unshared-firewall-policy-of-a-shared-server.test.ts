import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

const BOB = { email: 'bob-fw@example.com', password: 'bob-fw-password' };

// A shared server's NIC named the owner's firewall policy to a grantee who was never shown the policy, and his edit
// (sending back what he was shown) must not drop the owner's policy.
for (const db of databases()) {
  describe(`a grantee and the owner's firewall policy [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let policy: string;
    let server: string;
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
      bob = t.as(BOB.email, BOB.password);
      const tag = (await t.call('POST', '/tags/', { name: 'to-bob-fw' })).body.objects[0].uuid;
      await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: BOB.email }], rules: ['LIST', 'EDIT'], tags: [tag] });
      policy = (await t.call('POST', '/fwpolicies/', { name: 'alice-only', rules: [{ action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '22' }] }))
        .body.objects[0].uuid;
      const made = await t.call(
        'POST',
        '/servers/',
        minimalServer('fw-shared', { tags: [tag], nics: [{ ip_v4_conf: { conf: 'dhcp' }, firewall_policy: policy }] }),
      );
      assert.equal(made.status, 201, made.text);
      server = made.body.objects[0].uuid;
    });
    after(async () => t.close());

    test('the grantee sees no policy on the NIC, and the owner still does', async () => {
      const seen = await bob('GET', `/servers/${server}/`);
      assert.equal(seen.status, 200, seen.text);
      assert.equal(seen.body.nics[0].firewall_policy, null);
      assert.doesNotMatch(JSON.stringify((await bob('GET', '/servers/detail/')).body), new RegExp(policy));
      assert.equal((await t.call('GET', `/servers/${server}/`)).body.nics[0].firewall_policy.uuid, policy);
    });

    test("the grantee's edit keeps the owner's policy", async () => {
      const seen = (await bob('GET', `/servers/${server}/`)).body;
      const edit = await bob('PUT', `/servers/${server}/`, { ...seen, name: 'renamed-by-bob' });
      assert.equal(edit.status, 200, edit.text);
      const now = (await t.call('GET', `/servers/${server}/`)).body;
      assert.equal(now.name, 'renamed-by-bob');
      assert.equal(now.nics[0].firewall_policy.uuid, policy);
    });
  });
}
