import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { SubscriptionSweep } from '../src/commands/subscription-sweep.ts';

const ENDED = { start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' };
const ROUNDS = 6;
const PER_ROUND = 12;

// The sweep frees an ended subscription's IP when no server uses it; a server edit attaches an IP that exists. On
// PostgreSQL (READ COMMITTED) both checks could pass at once, leaving a server holding an address that was freed.
// Whichever wins, the end state must be one of: the server has the IP and the IP still exists, or the IP is gone and
// the edit was refused with 400 on the NIC's ip.
for (const db of databases()) {
  describe(`freeing an IP races a server edit attaching it [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      // Round after round buys an IP: more than one account's default quota.
      t = await startServer({ OPENSIGMA_IP_POOL: '203.0.113.0/24', OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '3600000', OPENSIGMA_QUOTA_IPS: '0' }, db);
    });
    after(async () => t?.close());

    test('every edit racing a sweep ends with the IP on the server and kept, or refused and freed', async () => {
      const servers: string[] = [];
      for (let i = 0; i < PER_ROUND; i++) {
        const c = await t.call('POST', '/servers/', minimalServer(`racer-${i}`));
        assert.equal(c.status, 201, c.text);
        servers.push(c.body.objects[0].uuid);
      }
      const store = t.running.svc.store;
      const outcomes: Array<{ server: string; ip: string; status: number; body: any }> = [];
      for (let round = 0; round < ROUNDS; round++) {
        const bought = await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: PER_ROUND, period: '1 month', auto_renew: false }]);
        assert.equal(bought.status, 201, bought.text);
        const ips: string[] = bought.body.objects.map((s: any) => s.subscribed_object);
        const { items } = await store.subscriptions.list({
          conditions: [{ column: 'uuid', op: 'exact', values: bought.body.objects.map((s: any) => s.uuid) }],
          tags: [],
          tagNames: [],
          limit: 0,
          offset: 0,
        });
        for (const s of items) await store.subscriptions.update({ ...s.doc, ...ENDED });
        // Sweeps (as API nodes' timers run them) while each server is edited to take one of the ended IPs.
        const edits = servers.map(async (server, i) => {
          await new Promise((r) => setTimeout(r, i * 12));
          const r = await t.call('PUT', `/servers/${server}/`, minimalServer(`racer-${i}`, { nics: [{ ip_v4_conf: { conf: 'static', ip: ips[i] } }] }));
          outcomes.push({ server, ip: ips[i]!, status: r.status, body: r.body });
        });
        const sweeps = [0, 10, 20].map(async (delay) => {
          await new Promise((r) => setTimeout(r, delay));
          await new SubscriptionSweep(t.running.svc).sweepAll();
        });
        await Promise.all([...edits, ...sweeps]);
        for (const o of outcomes.splice(0)) {
          const server = (await t.call('GET', `/servers/${o.server}/`)).body;
          const has = server.nics.some((n: any) => n.ip_v4_conf?.ip?.uuid === o.ip);
          const ip = await t.call('GET', `/ips/${o.ip}/`);
          if (o.status === 200) {
            assert.ok(has, `round ${round}: the edit of ${o.server} succeeded, so it holds ${o.ip}`);
            assert.equal(ip.status, 200, `round ${round}: ${o.server} holds ${o.ip}, which must not have been freed`);
            assert.equal(ip.body.server?.uuid, o.server);
          } else {
            assert.equal(o.status, 400, `round ${round}: ${JSON.stringify(o.body)}`);
            assert.equal(o.body[0].error_point, 'nics.ip_v4_conf.ip');
            assert.ok(!has, `round ${round}: a refused edit leaves ${o.server} without ${o.ip}`);
            assert.equal(ip.status, 404, `round ${round}: ${o.ip} was refused because it was freed`);
          }
        }
      }
    });
  });
}
