import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { databases, startServer, type TestServer } from './helpers/harness.ts';

/** The JSON body of a transcript file (after the blank line). */
const transcriptBody = (name: string) =>
  JSON.parse(
    fs
      .readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
      .split(/\r?\n\r?\n/)
      .slice(1)
      .join('\n\n'),
  );

for (const db of databases()) {
  describe(`subscriptions [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_IP_POOL: '198.51.100.0/29', OPENSIGMA_VLAN_POOL: '2' }, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
    });
    after(async () => t.close());

    test('the transcript create body buys a dssd subscription: 201, objects and price, times rounded to noon', async () => {
      const c = await t.call('POST', '/subscriptions/', transcriptBody('request_subscription_create.json'));
      assert.equal(c.status, 201);
      assert.equal(typeof c.body.price, 'string');
      const s = c.body.objects[0];
      const want = transcriptBody('response_subscription_create.json').objects[0];
      for (const k of Object.keys(want)) assert.ok(k in s, `missing ${k}`);
      assert.equal(s.amount, '30000');
      assert.equal(s.resource, 'dssd');
      assert.equal(s.status, 'active');
      assert.equal(s.auto_renew, true);
      assert.equal(s.subscribed_object, null);
      assert.match(s.id, /^\d+$/);
      assert.equal(s.resource_uri, `/api/2.0/subscriptions/${s.id}/`);
      assert.match(s.end_time, /^\d{4}-\d\d-\d\dT12:00:00\+00:00$/);
      assert.match(s.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      assert.match(s.period, /^(2[89]|3[012]) days, \d{1,2}:\d\d:\d\d(\.\d{6})?$/);
      const got = await t.call('GET', `/subscriptions/${s.id}/`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, s);
    });

    test('ip subscription with amount 2 makes two subscriptions, each holding one address of the pool', async () => {
      const c = await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 2, period: '1 month' }]);
      assert.equal(c.status, 201);
      assert.equal(c.body.objects.length, 2);
      const addrs = c.body.objects.map((s: any) => s.subscribed_object);
      for (const s of c.body.objects) {
        assert.equal(s.resource, 'ip');
        assert.equal(s.amount, '1');
      }
      assert.deepEqual(addrs, ['198.51.100.2', '198.51.100.3']);
      const ip = await t.call('GET', `/ips/${addrs[0]}/`);
      assert.equal(ip.status, 200);
      assert.deepEqual(ip.body.subscription, { id: Number(c.body.objects[0].id), resource_uri: c.body.objects[0].resource_uri });
      assert.equal(ip.body.gateway, '198.51.100.1');
      assert.equal(ip.body.netmask, 29);
    });

    test('vlan subscription creates a VLAN whose uuid is the subscribed object', async () => {
      const c = await t.call('POST', '/subscriptions/', { objects: [{ resource: 'vlan', amount: 1, period: '30 days' }] });
      assert.equal(c.status, 201);
      const uuid = c.body.objects[0].subscribed_object;
      const v = await t.call('GET', `/vlans/${uuid}/`);
      assert.equal(v.status, 200);
      assert.equal(v.body.subscription.id, Number(c.body.objects[0].id));
    });

    test('the pool running out refuses the whole request and assigns nothing', async () => {
      const before = (await t.call('GET', '/ips/?limit=0')).body.meta.total_count;
      const c = await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 4, period: '1 month' }]);
      assert.equal(c.status, 503);
      assert.equal(c.body[0].error_type, 'concurrency');
      assert.equal(c.headers.get('x-opensigma-error-code'), 'OS_ERR_POOL_EXHAUSTED');
      assert.match(c.body[0].error_message, /OPENSIGMA_IP_POOL/, 'it names the setting to raise');
      assert.equal((await t.call('GET', '/ips/?limit=0')).body.meta.total_count, before);
      const v = await t.call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 2, period: '1 month' }]);
      assert.equal(v.status, 503);
    });

    test('bad bodies are refused with the error array', async () => {
      const cases: Array<[unknown, string | null]> = [
        [{ objects: [{ amount: 1, period: '1 month' }] }, 'resource'],
        [{ objects: [{ resource: 'gold', amount: 1, period: '1 month' }] }, 'resource'],
        [{ objects: [{ resource: 'ip', amount: 'x', period: '1 month' }] }, 'amount'],
        [{ objects: [{ resource: 'ip', amount: 0, period: '1 month' }] }, 'amount'],
        [{ objects: [{ resource: 'ip', amount: 1 }] }, 'period'],
        [{ objects: [{ resource: 'ip', amount: 1, period: 'forever' }] }, 'period'],
        [{ objects: [{ resource: 'ip', amount: 1, end_time: 'tomorrow' }] }, 'end_time'],
        [{ objects: [{ resource: 'ip', amount: 501, period: '1 month' }] }, 'amount'],
      ];
      for (const [body, point] of cases) {
        const r = await t.call('POST', '/subscriptions/', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body[0].error_type, 'validation');
        assert.equal(r.body[0].error_point, point, JSON.stringify(body));
      }
    });

    test('list: price string, newest first, filters by resource and status; another account sees none of it', async () => {
      const l = await t.call('GET', '/subscriptions/');
      assert.equal(l.status, 200);
      assert.equal(l.body.meta.limit, 20);
      assert.equal(typeof l.body.price, 'string');
      const ids = l.body.objects.map((s: any) => Number(s.id));
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => b - a),
      );
      const ipOnly = await t.call('GET', '/subscriptions/?resource=ip&limit=0');
      assert.ok(ipOnly.body.objects.length >= 2 && ipOnly.body.objects.every((s: any) => s.resource === 'ip'));
      assert.equal((await t.call('GET', '/subscriptions/?status=expired')).body.meta.total_count, 0);
      assert.equal((await t.call('GET', '/subscriptions/?status=notexpired&limit=0')).body.meta.total_count, l.body.meta.total_count);
      const other = t.as('other@example.com', 'other-password');
      assert.equal((await other('GET', '/subscriptions/')).body.meta.total_count, 0);
      assert.equal((await other('GET', `/subscriptions/${ids[0]}/`)).status, 404);
      assert.equal((await other('POST', `/subscriptions/${ids[0]}/action/?do=extend`)).status, 404);
      assert.equal((await t.call('GET', '/subscriptions/abc/')).status, 404);
    });

    test('extend moves the end by the period; auto_renew toggles or follows the body', async () => {
      const s = (await t.call('POST', '/subscriptions/', [{ resource: 'cpu', amount: 1000, period: '1 month' }])).body.objects[0];
      const e = await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`, { period: '1 month' });
      assert.equal(e.status, 200);
      assert.ok(new Date(e.body.end_time).getTime() >= new Date(s.end_time).getTime() + 27 * 86400_000);
      assert.match(e.body.end_time, /T12:00:00\+00:00$/);
      const plain = await t.call('POST', `/subscriptions/${s.id}/action/?do=extend`);
      assert.equal(plain.status, 200);
      assert.ok(new Date(plain.body.end_time) > new Date(e.body.end_time));
      const off = await t.call('POST', `/subscriptions/${s.id}/action/?do=auto_renew`, {});
      assert.equal(off.body.auto_renew, false);
      const on = await t.call('POST', `/subscriptions/${s.id}/action/?do=auto_renew`, { auto_renew: true });
      assert.equal(on.body.auto_renew, true);
      assert.equal((await t.call('POST', `/subscriptions/${s.id}/action/?do=auto_renew`, { auto_renew: 'maybe' })).status, 400);
      assert.equal((await t.call('POST', `/subscriptions/${s.id}/action/?do=melt`)).status, 400);
    });

    test('the calculator quotes the transcript body with 200 and the same fields, and buys nothing', async () => {
      const before = (await t.call('GET', '/subscriptions/?limit=0')).body.meta.total_count;
      const q = await t.call('POST', '/subscriptioncalculator/', transcriptBody('request_subscriptioncalculator'));
      assert.equal(q.status, 200);
      const want = transcriptBody('response_subscriptioncalculator');
      assert.deepEqual(Object.keys(q.body).sort(), Object.keys(want).sort());
      assert.deepEqual(Object.keys(q.body.objects[0]).sort(), Object.keys(want.objects[0]).sort());
      assert.equal(q.body.objects[0].amount, '10000000000');
      assert.match(q.body.objects[0].end_time, /T12:00:00\+00:00$/);
      assert.equal((await t.call('GET', '/subscriptions/?limit=0')).body.meta.total_count, before);
      assert.equal((await t.call('POST', '/subscriptioncalculator/', [{ resource: 'gold', period: '1 month' }])).status, 400);
      const sub = (await t.call('GET', '/subscriptions/?resource=dssd')).body.objects[0];
      const e = await t.call('POST', `/subscriptioncalculator/${sub.id}/action/?do=extend`, {});
      assert.equal(e.status, 200);
      assert.deepEqual(Object.keys(e.body).sort(), Object.keys(transcriptBody('response_subscriptioncalculator_extend')).sort());
      assert.equal(e.body.start_time, sub.end_time);
      assert.equal((await t.call('GET', `/subscriptions/${sub.id}/`)).body.end_time, sub.end_time, 'a quote changes nothing');
    });

    test('list items have the fields of the transcript; the schema is served as CloudSigma does', async () => {
      const want = transcriptBody('response_subscription_list');
      const got = (await t.call('GET', '/subscriptions/')).body;
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
      assert.deepEqual(Object.keys(got.objects[0]).sort(), Object.keys(want.objects[0]).sort());
      assert.deepEqual((await t.call('GET', '/subscriptions/schema/')).body, transcriptBody('response_subscription_schema'));
    });

    test('an ended subscription without auto_renew expires and gives its free IP back to the pool', async () => {
      const c = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 1, period: '1 month', auto_renew: false }])).body.objects[0];
      const ip = c.subscribed_object;
      // End it: the operator's clock has moved past end_time.
      const store = t.running.svc.store;
      const row = (
        await store.subscriptions.list({ conditions: [{ column: 'uuid', op: 'exact', values: [c.uuid] }], tags: [], tagNames: [], limit: 0, offset: 0 })
      ).items[0]!;
      await store.subscriptions.update({ ...row.doc, start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' });
      const got = await t.call('GET', `/subscriptions/${c.id}/`);
      assert.equal(got.body.status, 'expired');
      assert.equal((await t.call('GET', `/ips/${ip}/`)).status, 404);
      assert.equal((await t.call('POST', `/subscriptions/${c.id}/action/?do=extend`)).status, 403);
    });
  });
}
