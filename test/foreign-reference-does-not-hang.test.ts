import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

// Regression: checking another account's drive, IP or VLAN inside the create transaction asked the ACL policy
// outside that transaction, which on SQLite waits for the transaction forever, and every later request with it.
for (const db of databases()) {
  describe(`a server referring to another account's objects [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
    });
    after(async () => t.close());

    test('is refused at once, and the API keeps answering', async () => {
      const other = t.as('other@example.com', 'other-password');
      const drive = (await t.call('POST', '/drives/', { name: 'mine', size: 1073741824, media: 'disk' })).body.objects[0].uuid;
      const [ip, vlan] = (
        await t.call('POST', '/subscriptions/', [
          { resource: 'ip', period: '1 month' },
          { resource: 'vlan', period: '1 month' },
        ])
      ).body.objects.map((s: any) => s.subscribed_object);
      const bodies = [{ drives: [{ drive, device: 'virtio', dev_channel: '0:0' }] }, { nics: [{ ip_v4_conf: { conf: 'static', ip } }] }, { nics: [{ vlan }] }];
      for (const extra of bodies) {
        const r = await other('POST', '/servers/', minimalServer('foreign', extra));
        assert.equal(r.status, 400, JSON.stringify(extra));
        assert.equal(r.body[0].error_type, 'validation');
      }
      assert.equal((await t.call('GET', '/servers/')).status, 200);
      assert.equal((await other('GET', '/servers/')).body.meta.total_count, 0);
    });
  });
}
