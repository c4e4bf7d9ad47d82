import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const ENDED = { start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' };

// Reads do not sweep: the background sweep alone expires, renews and frees. What a client reads must still show an
// ended subscription at once, and the sweep must free its IP and VLAN without any request being made.
for (const db of databases()) {
  describe(`an ended subscription shows at once and is swept in the background [${db.name}]`, () => {
    let t: TestServer;
    const started: TestServer[] = [];
    const start = async (env: Record<string, string>) => {
      t = await startServer(env, db);
      started.push(t);
    };
    after(async () => {
      for (const s of started) await s.close();
    });

    const buy = async () => {
      const bought = await t.call('POST', '/subscriptions/', [
        { resource: 'ip', period: '1 month', auto_renew: false },
        { resource: 'vlan', period: '1 month', auto_renew: false },
        { resource: 'cpu', amount: 1000, period: '1 month', auto_renew: true },
      ]);
      assert.equal(bought.status, 201, bought.text);
      const [ip, vlan, cpu] = bought.body.objects;
      return { ip, vlan, cpu };
    };
    /** The operator's clock moves past the subscriptions' end. */
    const end = async (...subs: Array<{ uuid: string }>) => {
      const store = t.running.svc.store;
      for (const s of subs) await store.subscriptions.update({ ...(await store.subscriptions.get(s.uuid))!.doc, ...ENDED });
    };

    test('with no sweep due, reads show the subscriptions ended or renewed and leave the IP and VLAN out', async () => {
      await start({ OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '3600000' });
      const { ip, vlan, cpu } = await buy();
      await end(ip, vlan, cpu);

      assert.equal((await t.call('GET', `/subscriptions/${ip.id}/`)).body.status, 'expired');
      assert.equal((await t.call('GET', `/subscriptions/${vlan.id}/`)).body.status, 'expired');
      const renewed = (await t.call('GET', `/subscriptions/${cpu.id}/`)).body;
      assert.equal(renewed.status, 'active', 'an ended auto-renewing subscription reads as renewed');
      assert.ok(new Date(renewed.end_time) > new Date(), renewed.end_time);
      const listed = (await t.call('GET', '/subscriptions/?status=notexpired')).body.objects.map((s: any) => s.id);
      assert.deepEqual(listed, [cpu.id]);

      assert.equal((await t.call('GET', `/ips/${ip.subscribed_object}/`)).status, 404);
      assert.equal((await t.call('GET', `/vlans/${vlan.subscribed_object}/`)).status, 404);
      assert.ok(!(await t.call('GET', '/ips/')).body.objects.some((o: any) => o.uuid === ip.subscribed_object));
      const vlans = (await t.call('GET', '/vlans/detail/')).body;
      assert.ok(!vlans.objects.some((o: any) => o.uuid === vlan.subscribed_object));
      assert.equal(vlans.meta.total_count, vlans.objects.length, 'the total counts what the list shows');
      assert.equal((await t.call('PUT', `/vlans/${vlan.subscribed_object}/`, { meta: { name: 'x' } })).status, 404);
      const attach = await t.call('POST', '/servers/', minimalServer('late', { nics: [{ vlan: vlan.subscribed_object }] }));
      assert.equal(attach.status, 400, attach.text);
      assert.equal(attach.body[0].error_point, 'nics.vlan');

      // None of those reads swept: the rows are as the clock left them, for the background sweep to settle.
      const store = t.running.svc.store;
      assert.ok(await store.ips.get(ip.subscribed_object), 'the IP is still stored');
      assert.ok(await store.vlans.get(vlan.subscribed_object), 'the VLAN is still stored');
      assert.equal((await store.subscriptions.get(cpu.uuid))!.doc.end_time, ENDED.end_time);
    });

    test('the background sweep frees the IP and VLAN and renews the rest without any request', async () => {
      await start({ OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '100' });
      const { ip, vlan, cpu } = await buy();
      await end(ip, vlan, cpu);
      const store = t.running.svc.store;
      await waitFor(
        async () => !(await store.ips.get(ip.subscribed_object)) && !(await store.vlans.get(vlan.subscribed_object)),
        10000,
        'the background sweep to free the IP and the VLAN',
      );
      assert.equal((await store.subscriptions.get(ip.uuid))!.status, 'expired');
      assert.equal((await store.subscriptions.get(vlan.uuid))!.status, 'expired');
      await waitFor(async () => new Date((await store.subscriptions.get(cpu.uuid))!.doc.end_time) > new Date(), 10000, 'the renewal');
    });
  });
}
