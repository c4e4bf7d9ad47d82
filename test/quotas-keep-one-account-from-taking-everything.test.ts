import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 2 ** 30;

for (const db of databases()) {
  describe(`per-account quotas [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer(
        {
          OPENSIGMA_QUOTA_SERVERS: '3',
          OPENSIGMA_QUOTA_DRIVES: '3',
          OPENSIGMA_QUOTA_DRIVE_BYTES: String(3 * GiB),
          OPENSIGMA_QUOTA_IPS: '1',
          OPENSIGMA_QUOTA_VLANS: '1',
        },
        db,
      );
    });
    after(async () => t.close());

    const refused = (r: { status: number; body: any; headers: Headers }, what: RegExp) => {
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body[0].error_type, 'permission');
      assert.equal(r.headers.get('x-opensigma-error-code'), 'OS_ERR_QUOTA_EXCEEDED');
      assert.match(r.body[0].error_message, what);
    };

    test('servers: a batch that would go over is refused whole, and nothing of it is created', async () => {
      assert.equal((await t.call('POST', '/servers/', { objects: [minimalServer('q1'), minimalServer('q2')] })).status, 201);
      refused(await t.call('POST', '/servers/', { objects: [minimalServer('q3'), minimalServer('q4')] }), /at most 3 servers/);
      assert.equal((await t.call('GET', '/servers/')).body.meta.total_count, 2);
      assert.equal((await t.call('POST', '/servers/', minimalServer('q3'))).status, 201);
      const s = (await t.call('GET', '/servers/')).body.objects[0];
      refused(await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, {}), /at most 3 servers/);
    });

    test('drives: their count and their total size, resizes included', async () => {
      refused(await t.call('POST', '/drives/', { name: 'huge', size: 4 * GiB, media: 'disk' }), /at most 3 GiB of drives/);
      const d = await t.call('POST', '/drives/', { name: 'd1', size: 2 * GiB, media: 'disk' });
      assert.equal(d.status, 201, JSON.stringify(d.body));
      const uuid = d.body.objects[0].uuid;
      const again = await waitFor(async () => {
        const g = await t.call('GET', `/drives/${uuid}/`);
        return g.body.status === 'unmounted' ? g : null;
      });
      refused(await t.call('PUT', `/drives/${uuid}/`, { ...again!.body, size: 4 * GiB }), /GiB of drives/);
      assert.equal((await t.call('GET', `/drives/${uuid}/`)).body.size, 2 * GiB, 'the refused resize changed nothing');
      for (const name of ['d2', 'd3']) {
        const r = await t.call('POST', '/drives/', { name, size: GiB / 2, media: 'disk' });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      refused(await t.call('POST', '/drives/', { name: 'd4', size: GiB / 2, media: 'disk' }), /at most 3 drives/);
    });

    test('one account cannot buy every IP of the pool: the second is over its quota, and another account still buys', async () => {
      const buy = (call: TestServer['call']) => call('POST', '/subscriptions/', { objects: [{ amount: 1, period: '1 month', resource: 'ip' }] });
      assert.equal((await buy(t.call)).status, 201);
      refused(await buy(t.call), /at most 1 IP addresses/);
      await t.running.svc.store.users.create('quota-other@example.com', 'quota-other-pw');
      const other = t.as('quota-other@example.com', 'quota-other-pw');
      assert.equal((await buy(other)).status, 201, 'another account is not affected');
    });

    test('/capabilities/ shows each quota with what the account holds', async () => {
      const q = (await t.call('GET', '/capabilities/')).body.quotas;
      assert.deepEqual(q.servers, { limit: 3, held: 3 });
      assert.deepEqual(q.ips, { limit: 1, held: 1 });
      assert.equal(q.drive_bytes.limit, 3 * GiB);
      assert.equal(q.drives.held, 3);
    });
  });
}
