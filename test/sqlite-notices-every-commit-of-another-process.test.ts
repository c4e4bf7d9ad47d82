import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDialect } from '../src/store/dialect/index.ts';

// The server learns of commits by other processes on its SQLite file (the CLI changing a password) by watching the
// write-ahead log. After a checkpoint the log is rewritten from its start, at the same size, and file times move in
// clock ticks on many kernels: a commit right after another may leave both as they were, and must be noticed all
// the same.
test('every commit by another connection on the SQLite file is noticed, also when the log is rewritten in place', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-external-'));
  const dialect = await openDialect(null, dir);
  const other = new Database(path.join(dir, 'opensigma.sqlite'));
  try {
    other.pragma('journal_mode = WAL');
    other.exec('CREATE TABLE marks (n integer)');
    const insert = other.prepare('INSERT INTO marks VALUES (?)');
    for (let i = 0; i < 200; i++) insert.run(i); // a log of some size, kept when it is restarted
    let missed = 0;
    for (let round = 0; round < 50; round++) {
      other.pragma('wal_checkpoint(RESTART)');
      const before = dialect.externalWrites!();
      insert.run(round); // rewrites the start of the log: its size stays, its time likely too
      if (dialect.externalWrites!() === before) missed++;
    }
    assert.equal(missed, 0, `${missed} of 50 commits went unnoticed`);
    // and nothing is seen to change when nothing did
    const now = dialect.externalWrites!();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(dialect.externalWrites!(), now);
    assert.equal(dialect.externalWrites!(), now);
  } finally {
    other.close();
    await dialect.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
