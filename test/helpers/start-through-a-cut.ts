import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { dropPostgres, freshPostgres, minimalServer, pgQuery, waitFor } from './harness.ts';
import { startNode, type NodeProcess } from './nodes.ts';
import { pgCutProxy, type CutProxy } from './pg-cut-proxy.ts';

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;

/**
 * A start whose agent loses its database connection right after one statement (the first matching `sql`) has
 * committed: an API node and one sim agent on a fresh database, only the agent behind the cutting proxy. The start
 * must still end with the server running and its operation done.
 */
export function describeStartThroughACut(opts: { suite: string; test: string; server: string; sql: string; cut: string }): void {
  describe(opts.suite, { skip: PG ? false : 'needs PostgreSQL: set OPENSIGMA_TEST_POSTGRES_URL (.ci/run does)' }, () => {
    let db: string;
    let proxy: CutProxy;
    const started: NodeProcess[] = [];

    before(async () => {
      db = await freshPostgres(PG!);
      proxy = await pgCutProxy(db);
      const env = { OPENSIGMA_DATABASE_URL: db, OPENSIGMA_SIM_DELAY_MS: '0' };
      started.push(await startNode('serve', { ...env, OPENSIGMA_ROLE: 'api' }));
      started.push(await startNode('agent', { ...env, OPENSIGMA_DATABASE_URL: proxy.url, OPENSIGMA_HOST_NAME: 'lossy', OPENSIGMA_SIM_HOSTS: '1' }));
    });

    after(async () => {
      await Promise.all(started.map((n) => n.kill('SIGTERM')));
      await proxy.close();
      for (const n of started) fs.rmSync(n.dataDir, { recursive: true, force: true });
      await dropPostgres(db).catch(() => {});
    });

    test(opts.test, async () => {
      const [api] = started;
      const created = await api!.call('POST', '/servers/', minimalServer(opts.server));
      assert.equal(created.status, 201, created.text);
      const uuid = created.body.objects[0].uuid;
      proxy.arm(opts.sql);
      assert.equal((await api!.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitFor(async () => proxy.cuts === 1, 10000, opts.cut);
      await waitFor(async () => (await api!.call('GET', `/servers/${uuid}/`)).body?.status === 'running', 15000, 'the server to run');
      // The agent records the operation's outcome just after the server turns running: wait for it, then check it.
      const ops = async () => pgQuery(db, `SELECT kind, state FROM operations WHERE server_uuid = $1`, [uuid]);
      await waitFor(async () => (await ops()).every((o: { state: string }) => o.state !== 'running' && o.state !== 'pending'), 10000, 'the operation to end');
      assert.deepEqual(await ops(), [{ kind: 'start', state: 'done' }]);
    });
  });
}
