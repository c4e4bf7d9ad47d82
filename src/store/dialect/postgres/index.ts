import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Dialect } from '../index.ts';
import { rowCountTriggers } from './row-counts.ts';

// bigint counts come back as strings by default; our counters fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

export function openPostgres(url: string): Dialect {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => {}); // a dropped idle connection is replaced on next use
  // A connection cut while checked out (server restart, pg_terminate_backend) fails its query; without a listener
  // the client's 'error' event would kill the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  let listener: pg.Client | null = null;
  const handlers = new Map<string, Array<(p: string) => void>>();
  let closed = false;

  let reconnecting = false;

  /** The listening connection died (e.g. PostgreSQL restarted): retry, backing off, until it is back. */
  function reconnectSoon(delay = 250): void {
    if (closed || reconnecting) return;
    reconnecting = true;
    setTimeout(() => {
      connectListener().then(
        () => (reconnecting = false),
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
    // deadlock_detected, serialization_failure, lock_not_available
    isConflict: (err) => ['40P01', '40001', '55P03'].includes((err as { code?: string } | null)?.code ?? ''),
    lockRows: (q) => q.forUpdate() as typeof q,
    claimRows: (q) => q.forUpdate().skipLocked() as typeof q,
    offsetOnly: (q, offset) => q.offset(offset) as typeof q,
    async makeUnlogged(d, table) {
      await sql`ALTER TABLE ${sql.table(table)} SET UNLOGGED`.execute(d);
    },
    async notify(channel, payload) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async listen(channel, handler) {
      if (!/^[a-z_]+$/.test(channel)) throw new Error(`bad channel ${channel}`);
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
