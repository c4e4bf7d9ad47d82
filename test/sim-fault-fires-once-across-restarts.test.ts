import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, dropPostgres, freshPostgres, minimalServer, waitFor } from './helpers/harness.ts';
import { CliServer, freePort } from './helpers/cli-process.ts';

/** sim_fail_next / sim_hang_next are one-shot: spent when they fire, durably, so a kill -9 neither repeats nor loses one. */
for (const db of databases()) {
  describe(`a simulated fault fires once, across a kill -9 and restart too [${db.name}]`, () => {
    let dataDir: string;
    let dbUrl: string | null = null;
    let node: CliServer;
    before(async () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-fault-'));
      dbUrl = db.url ? await freshPostgres(db.url) : null;
      node = new CliServer(dataDir, await freePort(), {
        OPENSIGMA_SIM_DELAY_MS: '50',
        OPENSIGMA_RECONCILE_MS: '500',
        ...(dbUrl ? { OPENSIGMA_DATABASE_URL: dbUrl } : {}),
      });
      await node.start();
    });
    after(async () => {
      await node.kill9();
      fs.rmSync(dataDir, { recursive: true, force: true });
      if (dbUrl) await dropPostgres(dbUrl).catch(() => {});
    });

    const create = async (name: string, meta: Record<string, string>) => {
      const r = await node.call('POST', '/servers/', minimalServer(name, { meta }));
      assert.equal(r.status, 201);
      return r.body.objects[0].uuid as string;
    };
    const start = async (uuid: string) => assert.equal((await node.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    const settled = (uuid: string, want: string) =>
      waitFor(async () => ((await node.call('GET', `/servers/${uuid}/`)).body?.status === want ? true : null), 20000, `server ${uuid} to be ${want}`);
    const restart = async () => {
      await node.kill9();
      await node.start();
    };

    test('sim_fail_next=start on a server that never ran: spent when the start fails, so after a restart the next start works', async () => {
      const uuid = await create('fails-once', { sim_fail_next: 'start', other: 'kept' });
      await start(uuid);
      await settled(uuid, 'stopped');
      await restart();
      await start(uuid);
      await settled(uuid, 'running');
      assert.deepEqual((await node.call('GET', `/servers/${uuid}/`)).body.meta, { other: 'kept' }, 'the spent key is gone from meta');
      await node.call('POST', `/servers/${uuid}/action/?do=stop`);
      await settled(uuid, 'stopped');
    });

    test('set again after it fired, sim_fail_next=start fires again, before and after a restart', async () => {
      const uuid = await create('fails-when-armed', { sim_fail_next: 'start' });
      await start(uuid);
      await settled(uuid, 'stopped');
      for (const again of [false, true]) {
        if (again) await restart();
        assert.equal((await node.call('PUT', `/servers/${uuid}/`, minimalServer('fails-when-armed', { meta: { sim_fail_next: 'start' } }))).status, 200);
        await start(uuid);
        await settled(uuid, 'stopped');
        assert.deepEqual((await node.call('GET', `/servers/${uuid}/`)).body.meta, {});
      }
      await start(uuid);
      await settled(uuid, 'running');
    });

    test('sim_hang_next=start: after a kill -9 while it hangs, the acknowledged start is carried out rather than hung again', async () => {
      const uuid = await create('hangs-once', { sim_hang_next: 'start' });
      await start(uuid);
      await new Promise((r) => setTimeout(r, 500)); // ten sim phases: a normal start would be done
      assert.equal((await node.call('GET', `/servers/${uuid}/`)).body.status, 'starting');
      await restart();
      await settled(uuid, 'running');
      assert.deepEqual((await node.call('GET', `/servers/${uuid}/`)).body.meta, {});
    });
  });
}
