import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pg from 'pg';
import { dropPostgres, freshPostgres, minimalServer, waitFor } from './helpers/harness.ts';
import { startNode, type NodeProcess } from './helpers/nodes.ts';
import { pgCutProxy, type CutProxy } from './helpers/pg-cut-proxy.ts';

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;

/**
 * Bug: an agent claims operations in the database, and the claim commits before its answer travels back. When the
 * connection died in between (a database restart, a network cut), the operations stayed `running` under the name of
 * an agent that never received them and kept heartbeating: the server stayed `starting` for ever.
 */
describe('an operation whose claim was lost with its connection', { skip: PG ? false : 'needs PostgreSQL: set OPENSIGMA_TEST_POSTGRES_URL (.ci/run does)' }, () => {
  let db: string;
  let proxy: CutProxy;
  const started: NodeProcess[] = [];

  before(async () => {
    db = await freshPostgres(PG!);
    proxy = await pgCutProxy(db);
    const env = { OPENSIGMA_DATABASE_URL: db, OPENSIGMA_SIM_DELAY_MS: '0' };
    started.push(await startNode('serve', { ...env, OPENSIGMA_ROLE: 'api' }));
    // Only the agent talks to the database through the proxy.
    started.push(await startNode('agent', { ...env, OPENSIGMA_DATABASE_URL: proxy.url, OPENSIGMA_HOST_NAME: 'lossy', OPENSIGMA_SIM_HOSTS: '1' }));
  });

  after(async () => {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    await proxy.close();
    for (const n of started) fs.rmSync(n.dataDir, { recursive: true, force: true });
    await dropPostgres(db).catch(() => {});
  });

  test('is still run by its agent: the server starts and no operation stays unfinished', async () => {
    const [api] = started;
    const created = await api!.call('POST', '/servers/', minimalServer('lost-claim'));
    assert.equal(created.status, 201, created.text);
    const uuid = created.body.objects[0].uuid;
    // The statement that hands operations to an agent: cut its connection once it has committed a claim.
    proxy.arm('"claimed_by" = $2, "claimed_at"');
    assert.equal((await api!.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    await waitFor(async () => proxy.cuts === 1, 10000, 'the claim to be cut');
    await waitFor(async () => (await api!.call('GET', `/servers/${uuid}/`)).body?.status === 'running', 15000, 'the server to run');
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    try {
      const ops = (await c.query(`SELECT kind, state FROM operations WHERE server_uuid = $1`, [uuid])).rows;
      assert.deepEqual(ops, [{ kind: 'start', state: 'done' }]);
    } finally {
      await c.end();
    }
  });
});
