import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Dialect } from '../index.ts';
import { rowCountTriggers } from './row-counts.ts';

/**
 * Kysely prepares every query anew; preparing costs more than running our small indexed queries. Statements are
 * reusable (queries run one at a time on the connection), so keep them by their SQL text.
 */
function cacheStatements(database: Database.Database, max = 2000): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, Database.Statement>();
  (database as { prepare: (sql: string) => Database.Statement }).prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      if (cache.size >= max) cache.clear(); // statements built from IN lists of every length must not pile up
      cache.set(sql, stmt);
    }
    return stmt;
  };
}

export function openSqlite(dataDir: string): Dialect {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'opensigma.sqlite');
  const database = new Database(file);
  // WAL + synchronous=FULL: an acknowledged commit is on disk before the response leaves.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  cacheStatements(database);
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
  const dataVersion = database.prepare('PRAGMA data_version').pluck();
  return {
    name: 'sqlite',
    db,
    serialType: 'integer',
    ilike: 'like',
    rowCountTriggers,
    shared: false,
    // One connection writes at a time: a transaction already excludes every other writer.
    isConflict: (err) => /^SQLITE_BUSY/.test((err as { code?: string } | null)?.code ?? ''),
    isConnectionLoss: () => false, // an open file does not go away
    lockRows: (q) => q,
    claimRows: (q) => q,
    // SQLite allows OFFSET only after a LIMIT; -1 means none.
    offsetOnly: (q, offset) => q.limit(-1).offset(offset) as typeof q,
    async makeUnlogged() {},
    async notify() {},
    async notifyIn() {},
    async listen() {},
    externalWrites: () => dataVersion.get() as number,
    async close() {
      await db.destroy();
    },
  };
}
