import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store/index.ts';
import { databases, dropPostgres, freshPostgres } from './helpers/harness.ts';

// SQLite's hot reads skip Kysely's connection lock when no transaction holds the one connection. One that ran while
// a transaction was open would read that transaction's writes, even ones it then rolls back.
for (const db of databases()) {
  describe(`a read while a write transaction is open answers what is committed [${db.name}]`, () => {
    let store: Store;
    let dir: string;
    let url: string | null = null;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-uncommitted-'));
      url = db.url ? await freshPostgres(db.url) : null;
      store = await Store.open(url, dir);
    });
    after(async () => {
      await store.close();
      if (url) await dropPostgres(url);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('a GET of a server during an edit that is rolled back never shows the edit', async () => {
      const owner = await store.users.create('reader@example.com', 'reader-password');
      const uuid = '5a0c7b9e-6d1f-4c1a-9f0e-2b7d3c4e5f60';
      const doc = { uuid, name: 'committed', cpu: 1000, mem: 536870912, tags: [] } as any;
      await store.servers.insert(owner.uuid, doc, 'stopped');

      let during: Promise<unknown> | undefined;
      await assert.rejects(
        store.transaction(async (trx) => {
          await store.servers.update({ ...doc, name: 'uncommitted' }, {}, trx);
          during = store.servers.get(uuid); // from outside the transaction, as a concurrent request reads
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      const seen = (await during) as { doc: { name: string }; version: number };
      assert.equal(seen.doc.name, 'committed');
      assert.equal(seen.version, 1);
      assert.equal((await store.servers.get(uuid))!.doc.name, 'committed');
    });
  });
}
