import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer, type TestServer } from './helpers/harness.ts';

// Requests per account per method per minute. Only the several-node case had a test; on one node the counter is
// in memory and decided without a promise, also for a client already known on its kept-alive connection.
for (const db of databases()) {
  describe(`the rate limit answers 429 in the API's error format [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_RATE_GET: '3', OPENSIGMA_RATE_POST: '1' }, db);
    });
    after(async () => t.close());

    test('the request over the limit answers 429 with Retry-After, per method, and changes nothing', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await t.call('GET', '/servers/')).status, 200);
      const over = await fetch(`${t.api}/servers/`, {
        headers: { authorization: `Basic ${Buffer.from('admin@example.com:admin-password').toString('base64')}` },
      });
      assert.equal(over.status, 429);
      assert.ok(Number(over.headers.get('retry-after')) >= 1 && Number(over.headers.get('retry-after')) <= 60);
      assert.equal(over.headers.get('x-opensigma-error-code'), 'OS_ERR_RATE_LIMITED');
      const [e] = await over.json();
      assert.equal(e.error_type, 'ratelimit');

      const tag = await t.call('POST', '/tags/', { objects: [{ name: 'first' }] });
      assert.equal(tag.status, 201, 'POSTs have their own budget');
      const second = await t.call('POST', '/tags/', { objects: [{ name: 'second' }] });
      assert.equal(second.status, 429);
      assert.equal(second.body[0].error_type, 'ratelimit');
      const names = (
        await t.running.svc.store.tags.list({ owner: tag.body.objects[0].owner.uuid, conditions: [], tags: [], tagNames: [], limit: 0, offset: 0 })
      ).items.map((x) => x.doc.name);
      assert.deepEqual(names, ['first'], 'the refused POST wrote nothing');
    });
  });
}
