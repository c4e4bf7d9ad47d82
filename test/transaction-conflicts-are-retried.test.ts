import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { Store } from '../src/store/index.ts';
import { databases, dropPostgres, freshPostgres } from './helpers/harness.ts';

// Regression: simultaneous starts on PostgreSQL could deadlock on host locks and answer 500 "unknown error".
for (const db of databases()) {
  describe(`transactions that lose a conflict are run again [${db.name}]`, () => {
    let store: Store;
    let dir: string;
    let url: string | null = null;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-conflict-'));
      url = db.url ? await freshPostgres(db.url) : null;
      store = await Store.open(url, dir);
      await sql`CREATE TABLE conflict_rows (id integer PRIMARY KEY, n integer NOT NULL)`.execute(store.db);
      await sql`INSERT INTO conflict_rows VALUES (1, 0), (2, 0)`.execute(store.db);
    });
    after(async () => {
      await store.close();
      if (url) await dropPostgres(url);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('two transactions locking the same rows in opposite order both commit', async () => {
      const bump = (first: number, second: number) =>
        store.transaction(async (trx) => {
          await sql`UPDATE conflict_rows SET n = n + 1 WHERE id = ${first}`.execute(trx);
          await new Promise((r) => setTimeout(r, 100)); // both now hold their first row
          await sql`UPDATE conflict_rows SET n = n + 1 WHERE id = ${second}`.execute(trx);
        });
      await Promise.all([bump(1, 2), bump(2, 1)]);
      const rows = (await sql<{ id: number; n: number }>`SELECT id, n FROM conflict_rows ORDER BY id`.execute(store.db)).rows;
      assert.deepEqual(
        rows.map((r) => Number(r.n)),
        [2, 2],
      );
    });
  });
}
