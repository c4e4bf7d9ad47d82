import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer } from './helpers/harness.ts';

const B = { email: 'b@example.com', password: 'b-password-123' };

for (const db of databases()) {
  test(`fault rules: probability, latency, count, account and method filters, removal; admin only; bad rules are 400 (${db.name})`, async () => {
    const t = await startServer({}, db);
    try {
      await t.running.svc.store.users.create(B.email, B.password);
      const asB = t.as(B.email, B.password);

      // Who may steer them: the administrator only.
      const anon = await fetch(`${t.api}/opensigma/faults/`);
      assert.equal(anon.status, 401);
      const refused = await asB('POST', '/opensigma/faults/', { path: '/api/2.0/servers/', status: 500 });
      assert.equal(refused.status, 403);
      assert.equal(refused.body[0].error_type, 'permission');
      assert.equal((await asB('GET', '/opensigma/faults/')).status, 403);
      assert.equal((await asB('DELETE', '/opensigma/faults/')).status, 403);

      // Bad rules: 400 with the error array, nothing set.
      for (const [bad, point] of [
        [{ path: '/api/2.0/servers/', status: 700 }, 'status'],
        [{ path: '/api/2.0/servers/', status: 500, probability: 1.5 }, 'probability'],
        [{ path_regex: '([a-', status: 500 }, 'path_regex'],
        [{ path: '/api/2.0/servers/' }, 'status'],
      ] as const) {
        const r = await t.call('POST', '/opensigma/faults/', bad);
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.equal(r.body[0].error_type, 'validation');
        assert.equal(r.body[0].error_point, point);
      }
      // Regression found by the fuzz test: an empty body was a 500.
      const empty = await t.call('POST', '/opensigma/faults/');
      assert.equal(empty.status, 400, empty.text);
      assert.equal(empty.body[0].error_type, 'validation');
      assert.deepEqual((await t.call('GET', '/opensigma/faults/')).body.objects, []);

      // Probability: over 200 requests, p=0.5 gives between 70 and 130 faults.
      const half = await t.call('POST', '/opensigma/faults/', { id: 'half', method: 'GET', path: '/api/2.0/tags/', status: 503, probability: 0.5 });
      assert.equal(half.status, 201);
      let faulted = 0;
      for (let i = 0; i < 200; i++) {
        const r = await t.call('GET', '/tags/');
        if (r.status === 503) {
          faulted++;
          assert.equal(r.body[0].error_type, 'concurrency');
        } else assert.equal(r.status, 200);
      }
      assert.ok(faulted >= 70 && faulted <= 130, `${faulted} faults of 200`);
      const listed = (await t.call('GET', '/opensigma/faults/')).body.objects;
      assert.equal(listed[0].id, 'half');
      assert.equal(listed[0].fired, faulted);
      assert.equal((await t.call('DELETE', '/opensigma/faults/half/')).status, 204);
      for (let i = 0; i < 20; i++) assert.equal((await t.call('GET', '/tags/')).status, 200);

      // Latency only: the real answer, at least 300 ms later.
      await t.call('POST', '/opensigma/faults/', { id: 'slow', path: '/api/2.0/servers/**', latency_ms: 300 });
      const t0 = performance.now();
      const slow = await t.call('GET', '/servers/');
      assert.equal(slow.status, 200);
      assert.ok(performance.now() - t0 >= 300, `${performance.now() - t0} ms`);
      await t.call('DELETE', '/opensigma/faults/');

      // Count, account and method: the rule fires twice, for POSTs of B only, with the error body given.
      const rule = { id: 'b-posts', method: 'POST', path: '/api/2.0/tags/', account: B.email, status: 500, error_message: 'boom', count: 2 };
      assert.equal((await t.call('POST', '/opensigma/faults/', rule)).status, 201);
      assert.equal((await t.call('POST', '/tags/', { name: 'admin-tag' })).status, 201, 'another account is not faulted');
      assert.equal((await asB('GET', '/tags/')).status, 200, 'another method is not faulted');
      for (let i = 0; i < 2; i++) {
        const r = await asB('POST', '/tags/', { name: `b${i}` });
        assert.equal(r.status, 500);
        assert.deepEqual(r.body, [{ error_message: 'boom', error_point: null, error_type: 'backend' }]);
      }
      assert.equal((await asB('POST', '/tags/', { name: 'b-third' })).status, 201, 'the count is spent');
      assert.equal((await t.call('GET', '/opensigma/faults/b-posts/')).body.fired, 2);

      // A query substring and a glob with a segment wildcard.
      await t.call('DELETE', '/opensigma/faults/');
      await t.call('POST', '/opensigma/faults/', { method: 'POST', path: '/api/2.0/servers/*/action/', query: 'do=start', status: 402 });
      const srv = (await t.call('POST', '/servers/', { name: 's', cpu: 1000, mem: 536870912, vnc_password: 'vncpass' })).body.objects[0];
      const start = await t.call('POST', `/servers/${srv.uuid}/action/?do=start`);
      assert.equal(start.status, 402);
      assert.equal((await t.call('GET', `/servers/${srv.uuid}/`)).body.status, 'stopped', 'the faulted start changed nothing');
      assert.notEqual((await t.call('POST', `/servers/${srv.uuid}/action/?do=stop`)).status, 402);
      await t.call('DELETE', '/opensigma/faults/');
      assert.equal((await t.call('POST', `/servers/${srv.uuid}/action/?do=start`)).status, 202, 'no longer once removed');
    } finally {
      await t.close();
    }
  });
}
