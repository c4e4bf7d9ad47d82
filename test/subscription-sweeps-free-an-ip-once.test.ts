import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { databases, dropPostgres, freshPostgres, pgQuery, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { startNode, type NodeProcess } from './helpers/nodes.ts';
import { SubscriptionSweep } from '../src/commands/subscription-sweep.ts';
import type { ChangeEvent } from '../src/events.ts';

const ENDED = { start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' };

// Every API node sweeps ended subscriptions (OPENSIGMA_SUBSCRIPTION_SWEEP_MS). Sweeps that overlap on one database
// must free each IP and VLAN once: one deleted event, one audit entry.
for (const db of databases()) {
  describe(`overlapping subscription sweeps free an IP or VLAN once [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_IP_POOL: '203.0.113.0/24', OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '3600000', OPENSIGMA_QUOTA_IPS: '0' }, db);
    });
    after(async () => t?.close());

    test('two sweeps at once: each freed object is deleted, announced and logged once', async () => {
      const bought = await t.call('POST', '/subscriptions/', [
        { resource: 'ip', amount: 4, period: '1 month', auto_renew: false },
        { resource: 'vlan', amount: 2, period: '1 month', auto_renew: false },
      ]);
      assert.equal(bought.status, 201, bought.text);
      const objects = bought.body.objects.map((s: any) => ({ kind: s.resource === 'ip' ? 'ips' : 'vlans', uuid: s.subscribed_object as string }));
      // The operator's clock has moved past their end.
      const store = t.running.svc.store;
      const { items } = await store.subscriptions.list({
        conditions: [{ column: 'uuid', op: 'exact', values: bought.body.objects.map((s: any) => s.uuid) }],
        tags: [],
        tagNames: [],
        limit: 0,
        offset: 0,
      });
      for (const s of items) await store.subscriptions.update({ ...s.doc, ...ENDED });

      const deleted: ChangeEvent[] = [];
      const off = t.running.svc.bus.subscribeOwn((e) => void (e.action === 'deleted' && deleted.push(e)));
      try {
        // As two API nodes' timers would: two sweepers over the same database at the same moment.
        await Promise.all([new SubscriptionSweep(t.running.svc).sweepAll(), new SubscriptionSweep(t.running.svc).sweepAll()]);
      } finally {
        off();
      }

      for (const o of objects) {
        assert.equal((await t.call('GET', `/${o.kind}/${o.uuid}/`)).status, 404, `${o.kind} ${o.uuid} is back in the pool`);
        assert.equal(deleted.filter((e) => e.uuid === o.uuid).length, 1, `one deleted event for ${o.uuid}`);
        const log = (await t.call('GET', `/logs/?limit=0&uuid=${o.uuid}`)).body.objects.filter((e: any) => e.action === 'delete');
        assert.equal(log.length, 1, `one audit entry for freeing ${o.uuid}: ${JSON.stringify(log)}`);
      }
      for (const s of bought.body.objects) assert.equal((await t.call('GET', `/subscriptions/${s.id}/`)).body.status, 'expired');
    });
  });
}

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;

describe('two API nodes sweeping one PostgreSQL database free each IP once', { skip: PG ? false : 'needs PostgreSQL: set OPENSIGMA_TEST_POSTGRES_URL' }, () => {
  let dbUrl: string;
  const nodes: NodeProcess[] = [];
  const sql = (q: string, params: unknown[] = []) => pgQuery(dbUrl, q, params);
  before(async () => {
    dbUrl = await freshPostgres(PG!);
    // The test buys more IPs for one account than its default quota.
    const env = {
      OPENSIGMA_DATABASE_URL: dbUrl,
      OPENSIGMA_ROLE: 'api',
      OPENSIGMA_IP_POOL: '203.0.113.0/24',
      OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '100',
      OPENSIGMA_QUOTA_IPS: '0',
    };
    nodes.push(await startNode('serve', env));
    nodes.push(await startNode('serve', env));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    for (const n of nodes) fs.rmSync(n.dataDir, { recursive: true, force: true });
    await dropPostgres(dbUrl).catch(() => {});
  });

  test('ended subscriptions: each IP leaves once, with one audit entry, whichever node freed it', async () => {
    const bought = await nodes[0]!.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 40, period: '1 month', auto_renew: false }]);
    assert.equal(bought.status, 201, bought.text);
    const ips: string[] = bought.body.objects.map((s: any) => s.subscribed_object);
    await sql(`UPDATE subscriptions SET data = (data::jsonb || $1::jsonb)::text WHERE resource = 'ip'`, [JSON.stringify(ENDED)]);
    await waitFor(async () => (await sql('SELECT count(*)::int AS n FROM ips WHERE uuid = ANY($1)', [ips]))[0].n === 0, 20000, 'the IPs to be freed');
    // Each node's GET waits for the audit entries that node is writing.
    for (const n of nodes) assert.equal((await n.call('GET', '/logs/?limit=1')).status, 200);
    const rows = await sql(
      `SELECT resource_uuid, count(*)::int AS n FROM audit_log WHERE action = 'delete' AND resource_uuid = ANY($1) GROUP BY resource_uuid`,
      [ips],
    );
    assert.deepEqual(
      rows.filter((r) => r.n !== 1),
      [],
      'no IP freed twice',
    );
    assert.equal(rows.length, ips.length, 'every freed IP logged');
  });
});
