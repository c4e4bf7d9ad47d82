import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { CliServer, freePort } from './helpers/cli-process.ts';
import type { SimDriver } from '../src/hypervisor/sim/index.ts';

async function settled(cli: CliServer, uuid: string, want: string, timeoutMs = 20000): Promise<any> {
  return waitFor(
    async () => {
      const r = await cli.call('GET', `/servers/${uuid}/`);
      return r.body?.status === want ? r.body : null;
    },
    timeoutMs,
    `server ${uuid} to be ${want}`,
  );
}

/** Removes a guest from the sim's state files: it died while opensigma was down. */
function vanishWhileDown(dataDir: string, uuid: string): void {
  const dir = path.join(dataDir, 'sim');
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const p = path.join(dir, f);
    const guests = JSON.parse(fs.readFileSync(p, 'utf8')) as Array<{ uuid: string }>;
    fs.writeFileSync(p, JSON.stringify(guests.filter((g) => g.uuid !== uuid)));
  }
}

describe('kill -9 of the opensigma process [sqlite]', () => {
  let dataDir: string;
  let cli: CliServer;
  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-crash-'));
    // Long sim phases, so that the kill lands while servers are starting or stopping.
    cli = new CliServer(dataDir, await freePort(), { OPENSIGMA_SIM_DELAY_MS: '2500', OPENSIGMA_RECONCILE_MS: '500' });
    await cli.start();
  });
  after(async () => {
    await cli.kill9();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('every acknowledged write survives a kill -9 that lands while more writes are in flight', async () => {
    const acked: Array<{ uuid: string; name: string }> = [];
    let killed: Promise<void> | null = null;
    const writes = Array.from(
      { length: 40 },
      (_, i) =>
        cli
          .call('POST', '/servers/', minimalServer(`durable-${i}`, { meta: { n: String(i) } }))
          .then((r) => {
            if (r.status === 201) acked.push({ uuid: r.body.objects[0].uuid, name: r.body.objects[0].name });
            if (acked.length === 25) killed ??= cli.kill9();
          })
          .catch(() => {}), // cut off by the kill
    );
    await Promise.all(writes);
    await killed;
    assert.ok(acked.length >= 25);
    await cli.start();
    for (const a of acked) {
      const r = await cli.call('GET', `/servers/${a.uuid}/`);
      assert.equal(r.status, 200, `acknowledged server ${a.name} is there`);
      assert.equal(r.body.name, a.name);
    }
  });

  test('servers caught starting or stopping are brought to a true state after the restart', async () => {
    const make = async (name: string) => (await cli.call('POST', '/servers/', minimalServer(name))).body.objects[0].uuid as string;
    const starting = await make('caught-starting');
    const stopping = await make('caught-stopping');
    const ghost = await make('guest-dies-while-down');
    const idle = await make('idle');
    // Edits acknowledged right before the kill must be there too.
    const edit = await cli.call('PUT', `/servers/${idle}/`, { ...minimalServer('idle-renamed'), meta: { edited: 'yes' } });
    assert.equal(edit.status, 200);

    for (const u of [stopping, ghost]) assert.equal((await cli.call('POST', `/servers/${u}/action/?do=start`)).status, 202);
    for (const u of [stopping, ghost]) await settled(cli, u, 'running');
    assert.equal((await cli.call('POST', `/servers/${starting}/action/?do=start`)).status, 202);
    assert.equal((await cli.call('POST', `/servers/${stopping}/action/?do=stop`)).status, 202);
    await new Promise((r) => setTimeout(r, 300)); // well inside the 2.5 s phases
    assert.equal((await cli.call('GET', `/servers/${starting}/`)).body.status, 'starting');
    assert.equal((await cli.call('GET', `/servers/${stopping}/`)).body.status, 'stopping');
    await cli.kill9();

    vanishWhileDown(dataDir, ghost);
    await cli.start();

    // The acknowledged start and stop are carried out; the guest that died is shown stopped; nothing is stuck.
    const s = await settled(cli, starting, 'running');
    assert.ok(s.runtime?.active_since);
    await settled(cli, stopping, 'stopped');
    const g = await settled(cli, ghost, 'stopped');
    assert.equal(g.runtime, null);
    const i = (await cli.call('GET', `/servers/${idle}/`)).body;
    assert.equal(i.name, 'idle-renamed');
    assert.deepEqual(i.meta, { edited: 'yes' });
    assert.equal(i.status, 'stopped');

    // And they work normally afterwards.
    assert.equal((await cli.call('POST', `/servers/${starting}/action/?do=start`)).status, 403);
    assert.equal((await cli.call('POST', `/servers/${starting}/action/?do=stop`)).status, 202);
    await settled(cli, starting, 'stopped');
    assert.equal((await cli.call('POST', `/servers/${ghost}/action/?do=start`)).status, 202);
    await settled(cli, ghost, 'running');
  });
});

for (const db of databases()) {
  describe(`periodic reconciliation with the driver [${db.name}]`, () => {
    let t: TestServer;
    const drivers = () => [...t.running.svc.compute!.hosts.values()] as unknown as SimDriver[];
    const hostOf = async (uuid: string) => {
      for (const d of drivers()) if ((await d.guests()).some((g) => g.uuid === uuid)) return d;
      return null;
    };
    before(async () => {
      t = await startServer({ OPENSIGMA_RECONCILE_MS: '300' }, db);
    });
    after(async () => t.close());

    test('a guest that crashes shows as stopped', async () => {
      const uuid = (await t.call('POST', '/servers/', minimalServer('crashes'))).body.objects[0].uuid;
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
      (await hostOf(uuid))!.crash(uuid);
      const s = await waitForStatus(t, uuid, 'stopped');
      assert.equal(s.runtime, null);
    });

    test('a guest that vanishes without any event is found by the periodic reconciliation', async () => {
      const uuid = (await t.call('POST', '/servers/', minimalServer('vanishes', { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }))).body.objects[0].uuid;
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
      (await hostOf(uuid))!.vanish(uuid);
      const s = await waitForStatus(t, uuid, 'stopped');
      assert.equal(s.runtime, null);
      // It starts again normally.
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
    });

    test('a guest the database shows stopped is powered off', async () => {
      const uuid = (await t.call('POST', '/servers/', minimalServer('orphan'))).body.objects[0].uuid;
      const s = await t.running.svc.store.servers.get(uuid);
      const d = drivers()[0]!;
      await d.start(await t.running.svc.compute!.guestSpec(s!.doc));
      assert.ok(await hostOf(uuid));
      await waitFor(async () => !(await hostOf(uuid)), 10000, 'the orphan guest to be powered off');
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'stopped');
    });
  });
}
