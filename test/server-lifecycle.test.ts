import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  describe(`server lifecycle [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('a new server is stopped, starts to running with runtime, and stops again', async () => {
      const c = await t.call('POST', '/servers/', { objects: [minimalServer('life', { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] })] });
      assert.equal(c.status, 201);
      const s = c.body.objects[0];
      assert.equal(s.status, 'stopped');
      assert.equal(s.runtime, null);
      const start = await t.call('POST', `/servers/${s.uuid}/action/?do=start`, {});
      assert.equal(start.status, 202);
      assert.deepEqual(start.body, { action: 'start', result: 'success', uuid: s.uuid });
      const running = await waitForStatus(t, s.uuid, 'running');
      assert.match(running.runtime.active_since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      assert.equal(running.runtime.nics[0].mac, s.nics[0].mac);
      assert.ok(running.nics[0].runtime.ip_v4.uuid);
      const again = await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      assert.equal(again.status, 403);
      assert.equal(again.body[0].error_type, 'permission');
      assert.equal(again.body[0].error_message, 'Cannot start guest in state "started". Guest should be in state "stopped"');
      const stop = await t.call('POST', `/servers/${s.uuid}/action/?do=stop`, null);
      assert.equal(stop.status, 202);
      const stopped = await waitForStatus(t, s.uuid, 'stopped');
      assert.equal(stopped.runtime, null);
      const stopAgain = await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      assert.equal(stopAgain.status, 403);
      assert.equal(stopAgain.body[0].error_message, `Cannot stop guest in state "stopped". Guest should be in state "['started', 'running_legacy']"`);
    });
  });
}
