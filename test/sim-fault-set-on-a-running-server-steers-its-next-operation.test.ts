import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

// Regression: the sim read its steering meta from the server's start only, so sim_fail_next or sim_acpi set on a
// running server (whose meta may be edited) did nothing until the next start.
for (const db of databases()) {
  describe(`sim meta set on a running server steers its next stop, shutdown or restart [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_ACPI_TIMEOUT_S: '2' }, db);
    });
    after(async () => t.close());

    const running = async (name: string) => {
      const uuid = (await t.call('POST', '/servers/', minimalServer(name))).body.objects[0].uuid as string;
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitForStatus(t, uuid, 'running');
      return uuid;
    };
    const setMeta = async (uuid: string, name: string, meta: Record<string, string>) =>
      assert.equal(await t.call('PUT', `/servers/${uuid}/`, minimalServer(name, { meta })).then((r) => r.status), 200);
    const metaOf = async (uuid: string) => (await t.call('GET', `/servers/${uuid}/`)).body.meta as Record<string, string>;

    test('sim_fail_next=stop: the next stop fails, the server runs on and the key is spent; the stop after works', async () => {
      const uuid = await running('fails-its-stop');
      await setMeta(uuid, 'fails-its-stop', { sim_fail_next: 'stop', other: 'kept' });
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitFor(async () => ((await metaOf(uuid)).sim_fail_next === undefined ? true : null), 10000, 'the fault to be spent');
      const after = await waitForStatus(t, uuid, 'running');
      assert.deepEqual(after.meta, { other: 'kept' });
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_acpi=ignore: a shutdown is ignored and the server is running again after the ACPI timeout', async () => {
      const uuid = await running('ignores-acpi');
      await setMeta(uuid, 'ignores-acpi', { sim_acpi: 'ignore' });
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=shutdown`)).status, 202);
      await waitForStatus(t, uuid, 'stopping');
      await new Promise((r) => setTimeout(r, 2500));
      await waitForStatus(t, uuid, 'running');
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_fail_next=restart: the next restart fails and the key is spent; the guest was not restarted', async () => {
      const uuid = await running('fails-its-restart');
      const since = (await t.call('GET', `/servers/${uuid}/`)).body.runtime.active_since;
      await new Promise((r) => setTimeout(r, 1100)); // active_since has whole seconds
      await setMeta(uuid, 'fails-its-restart', { sim_fail_next: 'restart' });
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=restart`)).status, 202);
      await waitFor(async () => ((await metaOf(uuid)).sim_fail_next === undefined ? true : null), 10000, 'the fault to be spent');
      const s = await waitForStatus(t, uuid, 'running');
      assert.equal(s.runtime.active_since, since);
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
    });
  });
}
