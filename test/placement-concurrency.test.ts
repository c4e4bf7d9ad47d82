import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  describe(`placement under simultaneous starts [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      // Two hosts with room for two 1000 MHz servers each.
      t = await startServer({ OPENSIGMA_SIM_HOSTS: '2', OPENSIGMA_SIM_HOST_CPU_MHZ: '2000' }, db);
    });
    after(async () => t.close());

    test('simultaneous starts fill the hosts exactly and never overbook one', async () => {
      const created = await t.call('POST', '/servers/', { objects: Array.from({ length: 7 }, (_, i) => minimalServer(`fill-${i}`)) });
      assert.equal(created.status, 201);
      const uuids: string[] = created.body.objects.map((o: any) => o.uuid);
      const replies = await Promise.all(uuids.map((u) => t.call('POST', `/servers/${u}/action/?do=start`)));
      const accepted = uuids.filter((_, i) => replies[i]!.status === 202);
      assert.equal(accepted.length, 4, JSON.stringify(replies.map((r) => r.status)));
      for (const r of replies.filter((x) => x.status !== 202)) assert.equal(r.headers.get('x-opensigma-error-code'), 'OS_ERR_NO_CAPACITY', r.text);
      for (const u of accepted) await waitForStatus(t, u, 'running');
      const groups = (await t.call('GET', '/servers/availability_groups/')).body as string[][];
      assert.deepEqual(groups.map((g) => g.length).sort(), [2, 2]);
    });
  });
}
