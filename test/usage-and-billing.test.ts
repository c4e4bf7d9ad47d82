import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

for (const db of databases()) {
  describe(`current usage, balance, pricing [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('current usage follows what the account holds: running servers, drives by storage type', async () => {
      const u0 = (await t.call('GET', '/currentusage/')).body;
      assert.deepEqual(u0.balance, { balance: '0', currency: 'EUR' });
      assert.deepEqual(u0.usage.cpu, { burst: 0, subscribed: 0, using: 0 });
      assert.equal(u0.usage.dssd.using, 0);
      const d = (await t.call('POST', '/drives/', { name: 'u', size: 2 * GiB, media: 'disk' })).body.objects[0];
      const s = (await t.call('POST', '/servers/', minimalServer('u', { cpu: 2000, mem: GiB }))).body.objects[0];
      let u = (await t.call('GET', '/currentusage/')).body.usage;
      assert.equal(u.dssd.using, 2 * GiB);
      assert.equal(u.cpu.using, 0, 'a stopped server uses no cpu');
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      u = (await t.call('GET', '/currentusage/')).body.usage;
      assert.equal(u.cpu.using, 2000);
      assert.equal(u.mem.using, GiB);
      assert.equal(u[`${s.cpu_type}_cpu`].using, 2000);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      assert.equal((await t.call('GET', '/currentusage/')).body.usage.cpu.using, 0);
      await t.call('DELETE', `/drives/${d.uuid}/`);
      await waitFor(async () => (await t.call('GET', '/currentusage/')).body.usage.dssd.using === 0, 5000, 'drive gone');
    });

    test('balance and pricing default to 0; empty ledger, discount, licenses with the schema shapes', async () => {
      assert.deepEqual((await t.call('GET', '/balance/')).body, { balance: '0', credit_limit: null, currency: 'EUR' });
      const p = (await t.call('GET', '/pricing/')).body;
      assert.equal(p.meta.limit, 0);
      assert.ok(p.objects.length > 0);
      for (const o of p.objects) {
        assert.deepEqual(Object.keys(o), ['currency', 'id', 'level', 'multiplier', 'price', 'resource', 'unit']);
        assert.equal(o.price, '0');
      }
      assert.ok(p.current && p.next);
      assert.ok((await t.call('GET', '/pricing/?level=0')).body.objects.every((o: any) => o.level === 0));
      assert.deepEqual((await t.call('GET', '/ledger/')).body, { meta: { limit: 20, offset: 0, total_count: 0 }, objects: [] });
      assert.deepEqual((await t.call('GET', '/discount/')).body, { meta: { limit: 0, offset: 0, total_count: 0 }, objects: [] });
      assert.deepEqual((await t.call('GET', '/licenses/')).body, { meta: { limit: 20, offset: 0, total_count: 0 }, objects: [] });
      for (const s of ['balance', 'pricing', 'ledger', 'discount', 'licenses', 'currentusage'])
        assert.equal((await t.call('GET', `/${s}/schema/`)).status, 200, s);
      assert.equal((await t.call('GET', '/ledger/?limit=-1')).status, 400);
      assert.equal((await t.call('DELETE', '/balance/')).status, 405);
    });

    test('an operator billing file sets currency, balance and prices, as decimal strings', async () => {
      fs.writeFileSync(
        path.join(t.dataDir, 'billing.json'),
        JSON.stringify({ currency: 'CHF', balance: '12.50', credit_limit: '100', prices: { cpu: '0.0125', dssd: 0.1 } }),
      );
      try {
        assert.deepEqual((await t.call('GET', '/balance/')).body, { balance: '12.50', credit_limit: '100', currency: 'CHF' });
        const p = (await t.call('GET', '/pricing/?level=0')).body.objects;
        assert.equal(p.find((o: any) => o.resource === 'cpu').price, '0.0125');
        assert.equal(p.find((o: any) => o.resource === 'dssd').price, '0.1');
        assert.equal(p.find((o: any) => o.resource === 'dssd').multiplier, GiB * 30 * 24 * 3600);
        assert.equal(p.find((o: any) => o.resource === 'mem').price, '0');
        assert.equal((await t.call('GET', '/currentusage/')).body.balance.currency, 'CHF');
        assert.equal((await t.call('GET', '/profile/')).body.currency, 'CHF');
      } finally {
        fs.rmSync(path.join(t.dataDir, 'billing.json'));
      }
    });
  });
}
