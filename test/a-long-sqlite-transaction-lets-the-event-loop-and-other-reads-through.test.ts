import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store/index.ts';

// SQLite answers each query synchronously: without care a transaction of many queries (a batch of 100 objects) is one
// chain of promises during which no socket of the process is served and every read waits for its end.
test('a long SQLite transaction lets the event loop turn, and reads outside it see the last commit at once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-slices-'));
  const store = await Store.open(null, dir);
  try {
    const alice = await store.users.create('alice-slices@example.com', 'alice-password');
    const before = '0b000000-0000-4000-8000-000000000001';
    const during = '0b000000-0000-4000-8000-000000000002';
    await store.tags.insert(alice.uuid, { uuid: before, name: 'committed', meta: {} }, '');
    let turns = 0;
    const seenDuring: Array<[boolean, boolean]> = [];
    let inserted = false;
    let finished = false;
    const tick = () => {
      if (finished) return;
      turns++;
      // Reads from outside the transaction, while it is open: answered now, with the committed rows only.
      if (inserted) void Promise.all([store.tags.get(before), store.tags.get(during)]).then(([a, b]) => seenDuring.push([!!a, !!b]));
      setImmediate(tick);
    };
    setImmediate(tick);
    await store.transaction(async (trx) => {
      await store.tags.insert(alice.uuid, { uuid: during, name: 'uncommitted', meta: {} }, '', trx);
      inserted = true;
      for (let i = 0; i < 20_000; i++) await trx.selectFrom('users').select('uuid').limit(1).execute();
    });
    finished = true;
    assert.ok(turns > 2, `the event loop turned ${turns} times during the transaction`);
    assert.ok(seenDuring.length > 0, 'reads outside the transaction were answered while it ran');
    assert.ok(
      seenDuring.every(([a, b]) => a && !b),
      `they saw the committed row and not the uncommitted one: ${JSON.stringify(seenDuring.slice(0, 5))}`,
    );
    assert.ok(await store.tags.get(during), 'after the commit the row is there');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
