import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type KyselyPlugin, type PluginTransformResultArgs, type QueryResult, type UnknownRow } from 'kysely';
import type { Dialect } from '../index.ts';
import { offerReadsAtOnce } from '../../prepared.ts';
import { rowCountTriggers } from './row-counts.ts';
import type { Database as Schema } from '../../schema.ts';

/** What Kysely's SQLite driver calls on a statement. */
type Runnable = Pick<Database.Statement, 'reader' | 'all' | 'run' | 'iterate'>;

/**
 * Kysely prepares every query anew; preparing costs more than running our small indexed queries. Statements are
 * reusable (queries run one at a time on the connection), so keep them by their SQL text.
 */
function cacheStatements(database: Database.Database, max = 2000): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, Runnable>();
  (database as unknown as { prepare: (sql: string) => Runnable }).prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = rowsBuiltInJs(prepare(sql));
      if (cache.size >= max) cache.clear(); // statements built from IN lists of every length must not pile up
      cache.set(sql, stmt);
    }
    return stmt;
  };
}

/**
 * better-sqlite3 builds each row object property by property in C++, which cost a page of 100 servers a third of its
 * query time; reading rows as arrays and making the objects with a literal of the statement's columns costs little.
 */
function rowsBuiltInJs(stmt: Database.Statement): Runnable {
  if (!stmt.reader) return stmt;
  const names = stmt.columns().map((c) => c.name);
  if (names.includes('__proto__')) return stmt;
  const row = new Function('r', `return {${names.map((n, i) => `${JSON.stringify(n)}: r[${i}]`).join(', ')}};`) as (r: unknown[]) => unknown;
  const raw = stmt.raw(true);
  return {
    reader: true,
    all: (...params: unknown[]) => (raw.all(...params) as unknown[][]).map(row),
    run: (...params: unknown[]) => raw.run(...params),
    *iterate(...params: unknown[]) {
      for (const r of raw.iterate(...params) as IterableIterator<unknown[]>) yield row(r);
    },
  } as Runnable;
}

/**
 * PRAGMA data_version, asked only when the write-ahead log may have changed. Every commit, of any process, writes the
 * log: while its size and modification time stay as they were, nothing was committed, and one fstat (a fraction of
 * the read transaction the PRAGMA opens) says so. A time within the last CLOCK_SLACK_MS is never trusted, since
 * file times move in clock ticks: a second write within the same tick would leave it as it was.
 */
function externalWritesWatcher(walFile: string, dataVersion: () => number): { read: () => number; close: () => void } {
  const CLOCK_SLACK_MS = 100;
  let fd: number | null = null;
  let seen = '';
  let version = dataVersion();
  return {
    read() {
      try {
        fd ??= fs.openSync(walFile, 'r');
        const st = fs.fstatSync(fd);
        const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
        const settled = Date.now() - st.mtimeMs > CLOCK_SLACK_MS;
        if (settled && key === seen) return version;
        seen = settled ? key : '';
      } catch {
        fd = null; // no log yet: ask SQLite every time until there is one
        seen = '';
      }
      return (version = dataVersion());
    },
    close() {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
    },
  };
}

/** Longest stretch of queries run back to back before the event loop gets a turn. */
const SLICE_MS = 10;

/**
 * better-sqlite3 answers each query synchronously, so a transaction of hundreds of queries (a batch of 100 objects)
 * is one chain of promises that never lets the event loop turn: every other client, console and VNC session of the
 * process waited for it. After SLICE_MS of queries without a turn, the next one waits for the event loop first.
 */
class YieldToEventLoop implements KyselyPlugin {
  private turnedAt = 0;
  private watching = false;

  transformQuery(args: Parameters<KyselyPlugin['transformQuery']>[0]) {
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const now = performance.now();
    if (!this.watching) {
      this.watching = true;
      this.turnedAt = now;
      setImmediate(() => (this.watching = false));
    } else if (now - this.turnedAt > SLICE_MS) await new Promise((r) => setImmediate(r));
    return args.result;
  }
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
  const dataVersion = database.prepare('PRAGMA data_version').pluck();
  const externalWrites = externalWritesWatcher(`${file}-wal`, () => dataVersion.get() as number);
  cacheStatements(database);
  // Reads outside any transaction while one is open (and paused for the event loop, above) go to a second,
  // read-only connection: on the writer's they would see its uncommitted rows, and through Kysely they would wait
  // for its lock, so a batch would hold up every other client's reads. WAL lets it read the last commit meanwhile.
  const reader = new Database(file, { readonly: true });
  reader.pragma('busy_timeout = 5000');
  cacheStatements(reader);
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }), plugins: [new YieldToEventLoop()] });
  // A read outside any transaction runs to its end before anything else does: it may skip Kysely's connection lock.
  offerReadsAtOnce(db, (sql, parameters) => {
    const stmt = (database.inTransaction ? reader : database).prepare(sql);
    return stmt.reader ? (stmt.all(parameters) as unknown[]) : undefined;
  });
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
    externalWrites: externalWrites.read,
    async close() {
      externalWrites.close();
      reader.close();
      await db.destroy();
    },
  };
}
