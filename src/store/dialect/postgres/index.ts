import { createHash } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Dialect } from '../index.ts';
import { rowCountTriggers } from './row-counts.ts';
import type { Database } from '../../schema.ts';

// bigint counts come back as strings by default; our counters fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

/** Most statement texts a process keeps prepared; beyond them (e.g. IN lists of unusual lengths) statements go unnamed. */
const MAX_PREPARED = 500;
/** "cached plan must not change result type": another node migrated a table under a prepared SELECT *. */
const isStalePlan = (e: unknown) => (e as { code?: string } | null)?.code === '0A000' && /cached plan/.test(String((e as Error).message));

/**
 * Named (server-side prepared) statements for Kysely's parameterised queries: PostgreSQL then parses and plans each
 * statement text once per connection instead of on every execution. Kysely only passes (text, values).
 */
function prepareStatements(client: pg.PoolClient, names: Map<string, string>, generation: { n: number }): void {
  // Typed as the promise form, the only one Kysely calls; other calls go through untouched.
  type Query = (...args: unknown[]) => Promise<unknown>;
  const query = client.query.bind(client) as Query;
  (client as unknown as { query: Query }).query = (...args: unknown[]) => {
    const [text, values] = args;
    // BEGIN cannot fail on a healthy connection: send it and go on, so that it shares a round trip with the
    // transaction's first statement (the connection pipelines; a dead connection fails that statement too).
    if (args.length === 2 && text === 'begin' && Array.isArray(values) && values.length === 0) {
      query(text).catch(() => {});
      return Promise.resolve({ command: 'BEGIN', rowCount: null, rows: [] });
    }
    if (args.length !== 2 || typeof text !== 'string' || !Array.isArray(values) || values.length === 0) return query(...args);
    let name = names.get(text);
    if (!name) {
      if (names.size >= MAX_PREPARED) return query(text, values);
      name = createHash('sha1').update(text).digest('base64url');
      names.set(text, name);
    }
    const run = () => query({ name: `${name}_${generation.n}`, text, values });
    return run().catch((e: unknown) => {
      if (!isStalePlan(e)) throw e;
      // Re-prepare everything under new names. Inside a transaction the retry fails too (the transaction is
      // aborted) and the store runs the whole transaction again, as for any conflict.
      generation.n++;
      return run().catch(() => {
        throw e;
      });
    });
  };
}

/** Connections per process: every query is a round trip, and more connections than cores only add context switches. */
const POOL_SIZE = Math.max(4, 2 * os.cpus().length);

export function openPostgres(url: string): Dialect {
  // pipeline: statements are written without waiting for the answers before them (only the deferred BEGIN uses it).
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, pipeline: true } as pg.PoolConfig);
  pool.on('error', () => {}); // a dropped idle connection is replaced on next use
  const names = new Map<string, string>();
  const generation = { n: 0 };
  pool.on('connect', (client) => {
    // A connection cut while checked out (server restart, pg_terminate_backend) fails its query; without a listener
    // the client's 'error' event would kill the process.
    client.on('error', () => {});
    prepareStatements(client, names, generation);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let listener: pg.Client | null = null;
  const handlers = new Map<string, Array<(p: string) => void>>();
  const resumers: Array<() => void> = [];
  let closed = false;
  let queued: Array<[string, string]> = [];
  let flushing: Promise<void> | null = null;

  let reconnecting = false;

  /** The listening connection died (e.g. PostgreSQL restarted): retry, backing off, until it is back. */
  function reconnectSoon(delay = 250): void {
    if (closed || reconnecting) return;
    reconnecting = true;
    setTimeout(() => {
      connectListener().then(
        () => {
          reconnecting = false;
          for (const r of resumers) r();
        },
        () => {
          reconnecting = false;
          reconnectSoon(Math.min(delay * 2, 5000));
        },
      );
    }, delay).unref();
  }

  async function connectListener(): Promise<void> {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    client.on('end', () => {
      if (listener !== client) return;
      listener = null;
      reconnectSoon();
    });
    client.on('notification', (msg) => {
      for (const h of handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    try {
      await client.connect();
      for (const channel of handlers.keys()) await client.query(`LISTEN ${channel}`);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    listener = client;
  }

  return {
    name: 'postgres',
    db,
    serialType: 'bigserial',
    ilike: 'ilike',
    rowCountTriggers,
    shared: true,
    isConnectionLoss: (err) => {
      const code = String((err as { code?: string } | null)?.code ?? '');
      // 08: connection exceptions; 57P01-03: the server shut down or is starting; socket errors; pg's own words
      if (/^08|^57P0[123]$|^ECONN|^EPIPE$|^ETIMEDOUT$/.test(code)) return true;
      return /Connection terminated|not queryable|connection error/i.test(String((err as Error | null)?.message ?? ''));
    },
    // deadlock_detected, serialization_failure, lock_not_available, and a plan made stale by another node's migration
    isConflict: (err) => ['40P01', '40001', '55P03'].includes((err as { code?: string } | null)?.code ?? '') || isStalePlan(err),
    lockRows: (q) => q.forUpdate() as typeof q,
    claimRows: (q) => q.forUpdate().skipLocked() as typeof q,
    offsetOnly: (q, offset) => q.offset(offset) as typeof q,
    async makeUnlogged(d, table) {
      await sql`ALTER TABLE ${sql.table(table)} SET UNLOGGED`.execute(d);
    },
    notify(channel, payload) {
      // Notifications made in one tick (an action's wakeup and its change event) share one round trip.
      queued.push([channel, payload]);
      flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => {
        const batch = queued;
        queued = [];
        flushing = null;
        return pool
          .query('SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, i) ORDER BY i', [
            batch.map((b) => b[0]),
            batch.map((b) => b[1]),
          ])
          .then(() => {});
      });
      return flushing;
    },
    async notifyIn(trx, channel, payload) {
      await sql`SELECT pg_notify(${channel}, ${payload})`.execute(trx);
    },
    async listen(channel, handler, resumed) {
      if (!/^[a-z_]+$/.test(channel)) throw new Error(`bad channel ${channel}`);
      if (resumed) resumers.push(resumed);
      const list = handlers.get(channel) ?? [];
      list.push(handler);
      handlers.set(channel, list);
      if (listener) {
        if (list.length === 1) await listener.query(`LISTEN ${channel}`);
      } else if (!reconnecting) await connectListener(); // a reconnect in progress LISTENs to every channel
    },
    async close() {
      closed = true;
      await listener?.end().catch(() => {});
      await db.destroy();
    },
  };
}
