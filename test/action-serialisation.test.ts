import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

/** Sends `n` copies of one action at once; returns the status codes and bodies. */
async function burst(t: TestServer, uuid: string, action: string, n = 10) {
  return Promise.all(Array.from({ length: n }, () => t.call('POST', `/servers/${uuid}/action/?do=${action}`)));
}

function assertOneAccepted(replies: Array<{ status: number; body: any }>, action: string) {
  const accepted = replies.filter((r) => r.status === 202);
  assert.equal(accepted.length, 1, `exactly one ${action} accepted; got ${replies.map((r) => r.status).join(',')}`);
  for (const r of replies.filter((x) => x.status !== 202)) {
    assert.ok(r.status === 403 || r.status === 503, `refused with 403 or 503, not ${r.status}`);
    assert.ok(Array.isArray(r.body) && r.body.length === 1, 'an error array');
    assert.equal(r.body[0].error_type, r.status === 403 ? 'permission' : 'concurrency');
  }
}

for (const db of databases()) {
  describe(`concurrent actions on one server are serialised [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('of 10 simultaneous starts exactly one is accepted, and the server ends running', async () => {
      const uuid = (await t.call('POST', '/servers/', minimalServer('racy', { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }))).body.objects[0].uuid;
      assertOneAccepted(await burst(t, uuid, 'start'), 'start');
      const s = await waitForStatus(t, uuid, 'running');
      assert.equal(s.runtime.nics.length, 1);
      // One guest, one address: the host runs it once.
      const guests = [];
      for (const d of t.running.svc.compute!.hosts.values()) guests.push(...(await d.guests()).filter((g) => g.uuid === uuid));
      assert.equal(guests.length, 1);
    });

    test('of 10 simultaneous stops exactly one is accepted, and the server ends stopped', async () => {
      const uuid = (await t.call('GET', '/servers/?name=racy')).body.objects[0].uuid;
      assertOneAccepted(await burst(t, uuid, 'stop'), 'stop');
      const s = await waitForStatus(t, uuid, 'stopped');
      assert.equal(s.runtime, null);
    });

    test('starts and stops racing each other leave a state the host agrees with', async () => {
      const uuid = (await t.call('GET', '/servers/?name=racy')).body.objects[0].uuid;
      for (let round = 0; round < 3; round++) {
        const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => t.call('POST', `/servers/${uuid}/action/?do=${i % 2 ? 'stop' : 'start'}`)));
        assert.ok(
          replies.every((r) => [202, 403, 503].includes(r.status)),
          replies.map((r) => r.status).join(','),
        );
        // A boot that lost the race is powered off right after: wait for the host and the API to agree.
        await waitFor(
          async () => {
            const settled = await waitForSettled(t, uuid);
            let up = false;
            for (const d of t.running.svc.compute!.hosts.values()) up ||= (await d.guests()).some((g) => g.uuid === uuid);
            return up === (settled === 'running');
          },
          10000,
          'the API and the host to agree',
        );
      }
    });
  });
}

async function waitForSettled(t: TestServer, uuid: string): Promise<string> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = (await t.call('GET', `/servers/${uuid}/`)).body.status;
    if (s === 'running' || s === 'stopped') return s;
    if (Date.now() > deadline) throw new Error(`server stuck in ${s}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
