import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

// Regression: start, then stop while the guest is still starting, then start again ended running and, a few
// seconds later, stopped by itself: the first start's late outcome was taken for the second's.
for (const db of databases()) {
  describe(`start, stop while starting, start [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_SIM_DELAY_MS: '800', OPENSIGMA_RECONCILE_MS: '300' }, db);
    });
    after(async () => t.close());

    test('ends running and stays running', async () => {
      const c = await t.call('POST', '/servers/', { objects: [minimalServer('race')] });
      const uuid = c.body.objects[0].uuid;
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitForStatus(t, uuid, 'running');
      // longer than the first start's boot and several reconciliation passes
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 300));
        const s = await t.call('GET', `/servers/${uuid}/`);
        assert.equal(s.body.status, 'running', `after ${(i + 1) * 300} ms`);
      }
      const ops = await t.call('GET', `/servers/${uuid}/`);
      assert.ok(ops.body.runtime, 'a running server shows its runtime');
    });
  });
}
