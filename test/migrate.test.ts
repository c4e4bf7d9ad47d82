import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, dropPostgres, freshPostgres } from './helpers/harness.ts';
import { runCli } from './helpers/nodes.ts';
import { migrations } from '../src/store/migrate.ts';

for (const db of databases()) {
  describe(`opensigma migrate [${db.name}]`, () => {
    test('applies every migration once, however many processes run it at once', async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-migrate-'));
      const url = db.url ? await freshPostgres(db.url) : null;
      const env = { OPENSIGMA_DATA: dataDir, ...(url ? { OPENSIGMA_DATABASE_URL: url } : {}) };
      try {
        const names = Object.keys(migrations({} as any));
        // SQLite is one process's database: concurrency matters on PostgreSQL only.
        const runs = await Promise.all(Array.from({ length: url ? 3 : 1 }, () => runCli(['migrate'], env)));
        for (const r of runs) assert.equal(r.code, 0, r.stderr);
        const applied = runs.flatMap((r) => (r.stdout.match(/^applied: (.*)$/m)?.[1] ?? '').split(', ').filter(Boolean));
        assert.deepEqual(applied.sort(), names.slice().sort());
        const again = await runCli(['migrate'], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /database is up to date/);
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
        if (url) await dropPostgres(url);
      }
    });
  });
}
