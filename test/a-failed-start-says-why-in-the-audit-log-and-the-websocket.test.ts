import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

// Regression: a start that failed on its host left an audit entry start_failed with success true and no message,
// and the websocket frame said nothing of why; the user only saw the server back to stopped.
for (const db of databases()) {
  describe(`a failed start says why [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_SIM_DELAY_MS: '50' }, db);
    });
    after(async () => t.close());

    test('an unsuccessful audit entry with the error, a websocket frame with it, and the server stopped', async () => {
      const uuid = (await t.call('POST', '/servers/', minimalServer('fails', { meta: { sim_fail_next: 'start' } }))).body.objects[0].uuid;
      const r = await t.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
      const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/websocket`, { headers: { cookie } });
      const frames: any[] = [];
      ws.on('message', (m) => frames.push(JSON.parse(String(m))));
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
      const entry = await waitFor(async () => {
        const logs = (await t.call('GET', `/logs/?uuid=${uuid}`)).body.objects as Array<Record<string, unknown>>;
        return logs.find((l) => l.action === 'start_failed') ?? null;
      });
      assert.equal(entry!.success, false);
      assert.match(String(entry!.error_message), /did not start/);
      const frame = await waitFor(async () => frames.find((f) => f.object?.uuid === uuid && f.error) ?? null);
      assert.match(String(frame!.error), /did not start/);
      ws.close();
    });
  });
}
