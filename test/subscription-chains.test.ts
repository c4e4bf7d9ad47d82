import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';

/** Subscription frames seen on the websocket. */
async function subscriptionFrames(t: TestServer): Promise<{ frames: any[]; close(): void }> {
  const r = await t.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const ws = new WebSocket(t.url.replace(/^http/, 'ws') + '/websocket', { headers: { cookie } });
  const frames: any[] = [];
  ws.on('message', (m) => {
    const f = JSON.parse(m.toString());
    if (f.resource_type === 'subscriptions') frames.push(f);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { frames, close: () => ws.close() };
}

for (const db of databases()) {
  describe(`subscription chains and expiry [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_SUBSCRIPTION_SWEEP_MS: '200' }, db);
    });
    after(async () => t?.close());

    /** Moves a subscription into the past, as if the operator's clock had passed its end. */
    async function endInPast(uuid: string, end = '2020-02-01T12:00:00+00:00') {
      const store = t.running.svc.store;
      const s = (await store.subscriptions.get(uuid))!;
      await store.subscriptions.update({ ...s.doc, start_time: '2020-01-01T12:00:00+00:00', end_time: end });
    }

    test('extending buys the next link of the chain, listed in descendants; /groupedsubscriptions/ shows chains', async () => {
      const s = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 1, period: '1 month' }])).body.objects[0];
      const e = await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`, { period: '1 month' });
      assert.equal(e.status, 200, e.text);
      assert.notEqual(e.body.id, s.id);
      assert.equal(e.body.start_time, s.end_time);
      assert.equal(e.body.status, 'inactive');
      assert.equal(e.body.resource, 'ip');
      assert.equal(e.body.subscribed_object, s.subscribed_object);
      assert.deepEqual(e.body.descendants, []);
      const e2 = (await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`)).body;
      assert.equal(e2.start_time, e.body.end_time, 'a second extension continues the chain');

      const root = (await t.call('GET', `/subscriptions/${s.id}/`)).body;
      assert.equal(root.end_time, s.end_time, 'the extended subscription keeps its own period');
      assert.deepEqual(
        root.descendants.map((d: any) => d.resource_uri),
        [e.body.resource_uri, e2.resource_uri],
      );
      assert.deepEqual(
        (await t.call('GET', `/subscriptions/${e.body.id}/`)).body.descendants.map((d: any) => d.resource_uri),
        [e2.resource_uri],
      );

      const grouped = await t.call('GET', '/groupedsubscriptions/?resource=ip&limit=0');
      assert.equal(grouped.status, 200);
      assert.equal(grouped.body.price, '0');
      const chain = grouped.body.objects.find((g: any) => g.id === s.id);
      assert.ok(chain, 'the chain is listed under its first subscription');
      assert.deepEqual(
        chain.descendants.map((d: any) => d.uuid),
        [e.body.uuid, e2.uuid],
      );
      assert.deepEqual(Object.keys(chain.descendants[0]).sort(), Object.keys(root).sort());
      assert.ok(!grouped.body.objects.some((g: any) => g.id === e.body.id || g.id === e2.id), 'extensions are not chains of their own');
      assert.equal(grouped.body.meta.total_count, grouped.body.objects.length);
      assert.equal(
        (await t.call('GET', '/groupedsubscriptions/?resource=vlan&limit=0')).body.objects.some((g: any) => g.id === s.id),
        false,
      );
    });

    test('the background sweep expires an ended subscription without anyone asking, and its IP goes to the next link', async () => {
      const ws = await subscriptionFrames(t);
      try {
        const lone = (await t.call('POST', '/subscriptions/', [{ resource: 'cpu', amount: 1000, period: '1 month', auto_renew: false }])).body.objects[0];
        const s = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 1, period: '1 month', auto_renew: false }])).body.objects[0];
        const e = (await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`, { period: '1 month' })).body;
        await endInPast(lone.uuid);
        await endInPast(s.uuid);
        // ... and its extension began where it ended.
        const store = t.running.svc.store;
        const ext = (await store.subscriptions.get(e.uuid))!;
        await store.subscriptions.update({ ...ext.doc, start_time: '2020-02-01T12:00:00+00:00' });
        // No request reads them: only the background sweep can send these frames.
        for (const id of [lone.id, s.id])
          await waitFor(async () => ws.frames.some((f) => f.object?.id === id && f.object.status === 'expired'), 10000, `subscription ${id} to expire`);
        const ip = await t.call('GET', `/ips/${s.subscribed_object}/`);
        assert.equal(ip.status, 200, 'the extension still holds the address');
        assert.equal(ip.body.subscription.resource_uri, e.resource_uri);
        assert.equal((await t.call('GET', `/subscriptions/${e.id}/`)).body.status, 'active');
      } finally {
        ws.close();
      }
    });

    test('bad extensions get the error array and change nothing', async () => {
      const s = (await t.call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 1, period: '1 month' }])).body.objects[0];
      const count = async () => (await t.call('GET', '/subscriptions/?limit=0')).body.meta.total_count;
      const before = await count();
      for (const body of [{ end_time: 'soon' }, { end_time: '2001-01-01T00:00:00+00:00' }, { period: 'forever and a day' }]) {
        const r = await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`, body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body[0].error_type, 'validation');
      }
      assert.equal((await t.call('POST', '/subscriptions/999999/action/?do=extend', {})).status, 404);
      await t.running.svc.store.users.create('chains-other@example.com', 'chains-other-pw');
      const other = t.as('chains-other@example.com', 'chains-other-pw');
      assert.equal((await other('POST', `/subscriptions/${s.id}/action/?do=extend`, {})).status, 404);
      assert.equal((await other('GET', '/groupedsubscriptions/')).body.meta.total_count, 0);
      assert.equal(await count(), before);
      assert.deepEqual((await t.call('GET', `/subscriptions/${s.id}/`)).body.descendants, []);
    });
  });
}
