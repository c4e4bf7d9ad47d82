import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const ENDED = { start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' };

// An IP or VLAN whose subscription ends while a server uses it stays with the server. Once the server lets go, the
// background sweep must free it even if its account never calls the API again (the sweep used to visit only
// accounts with a subscription still running).
for (const db of databases()) {
  describe(`an IP or VLAN held by a server when its subscription ended is freed by the background sweep [${db.name}]`, () => {
    let t: TestServer;
    const holder = () => t.as('holder@example.com', 'holder-password');
    before(async () => {
      // One address and one VLAN in the pools: whether another account can buy them shows whether they were freed.
      t = await startServer({ OPENSIGMA_IP_POOL: '203.0.113.8/30', OPENSIGMA_VLAN_POOL: '1', OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '100' }, db);
      await t.running.svc.store.users.create('holder@example.com', 'holder-password');
    });
    after(async () => t?.close());

    test('kept while the server uses it, not attachable elsewhere, freed once the server is gone', async () => {
      const bought = await holder()('POST', '/subscriptions/', [
        { resource: 'ip', period: '1 month', auto_renew: false },
        { resource: 'vlan', period: '1 month', auto_renew: false },
      ]);
      assert.equal(bought.status, 201, bought.text);
      const [ip, vlan] = bought.body.objects.map((s: any) => s.subscribed_object as string);
      const made = await holder()('POST', '/servers/', minimalServer('holder', { nics: [{ ip_v4_conf: { conf: 'static', ip } }, { vlan }] }));
      assert.equal(made.status, 201, made.text);
      const server = made.body.objects[0].uuid;

      // The operator's clock moves past the subscriptions' end; the background sweep expires them.
      const store = t.running.svc.store;
      const subs = async () =>
        (
          await store.subscriptions.list({
            owner: (await store.users.byEmail('holder@example.com'))!.uuid,
            conditions: [],
            tags: [],
            tagNames: [],
            limit: 0,
            offset: 0,
          })
        ).items;
      for (const s of await subs()) await store.subscriptions.update({ ...s.doc, ...ENDED });
      await waitFor(async () => (await subs()).every((s) => s.status === 'expired'), 10000, 'the sweep to expire the subscriptions');

      // Still the server's: not back in the pool, and not attachable to another server.
      const nics = (await holder()('GET', `/servers/${server}/`)).body.nics;
      assert.equal(nics[0].ip_v4_conf.ip.uuid, ip);
      assert.equal(nics[1].vlan.uuid, vlan);
      assert.equal((await t.call('POST', '/subscriptions/', [{ resource: 'ip', period: '1 month' }])).status, 503);
      const second = await holder()('POST', '/servers/', minimalServer('second', { nics: [{ ip_v4_conf: { conf: 'static', ip } }] }));
      assert.equal(second.status, 400, second.text);
      assert.equal(second.body[0].error_point, 'nics.ip_v4_conf.ip');
      const third = await holder()('POST', '/servers/', minimalServer('third', { nics: [{ vlan }] }));
      assert.equal(third.status, 400, third.text);
      assert.equal(third.body[0].error_point, 'nics.vlan');

      // The holder's last request: the server goes. No sweep of its own follows.
      assert.equal((await holder()('DELETE', `/servers/${server}/`)).status, 204);
      const again = await waitFor(
        async () => {
          const r = await t.call('POST', '/subscriptions/', [
            { resource: 'ip', period: '1 month' },
            { resource: 'vlan', period: '1 month' },
          ]);
          return r.status === 201 ? r : null;
        },
        8000,
        'the background sweep to free the IP and the VLAN',
      );
      assert.equal(again!.body.objects[0].subscribed_object, ip);
    });
  });
}
