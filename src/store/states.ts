import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import { COUNTED_TABLES } from './documents.ts';
import type { Store } from './index.ts';
import type { Database } from './schema.ts';

const exec = promisify(execFile);

/** Where a saved state lives and which directories of drive bytes it holds (storage dir, remote snapshots). */
export interface StatePlaces {
  /** <data>/states */
  statesDir: string;
  /** name in the state -> the live directory */
  dirs: Record<string, string>;
}

/** Saved states live in <data>/states; they hold the database's rows and the storage and remote-snapshot dirs. */
export function statePlaces(config: { dataDir: string; storageDir: string; remoteSnapshotDir: string }): StatePlaces {
  return { statesDir: path.join(config.dataDir, 'states'), dirs: { drives: config.storageDir, 'remote-snapshots': config.remoteSnapshotDir } };
}

export const STATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class StateError extends Error {
  constructor(
    message: string,
    readonly kind: 'missing' | 'invalid',
  ) {
    super(message);
  }
}

/** Tables a state skips: the migrations' bookkeeping; row_counts is derived, rebuilt from the restored rows. */
/** The installation's machinery, not what its users made: compute hosts and their heartbeats, storage markers, rate counters. */
const MACHINERY = ['hosts', 'storage_markers', 'rate_counters'];
const skipped = (t: string) => t.startsWith('kysely_migration') || t.startsWith('sqlite_') || MACHINERY.includes(t);
/** Kept by a plain reset: who logs in, and with what. */
const ACCOUNT_TABLES = ['users', 'tokens', 'credential_changes'] as const;

async function tables(store: Store, trx: Kysely<Database>): Promise<string[]> {
  const rows =
    store.dialect.name === 'sqlite'
      ? await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`.execute(trx)
      : await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`.execute(trx);
  return rows.rows.map((r) => r.name).filter((t) => !skipped(t));
}

async function columns(store: Store, trx: Kysely<Database>, table: string): Promise<string[]> {
  if (store.dialect.name === 'sqlite') return (await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`.execute(trx)).rows.map((r) => r.name);
  return (
    await sql<{
      name: string;
    }>`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table}`.execute(trx)
  ).rows.map((r) => r.name);
}

const q = (id: string) => `"${id.replace(/"/g, '""')}"`;

/** SQLite rows are plain values but for BLOBs, which JSON carries as {"$b64": ...}. */
const encode = (row: Record<string, unknown>) => {
  for (const [k, v] of Object.entries(row)) if (Buffer.isBuffer(v)) row[k] = { $b64: v.toString('base64') };
  return row;
};
const decode = (v: unknown) => (v && typeof v === 'object' && '$b64' in v ? Buffer.from(String((v as { $b64: string }).$b64), 'base64') : v);

/** Copies a directory's contents keeping holes and symlinks (library images); never links, the copy is its own. */
async function copyContents(from: string, to: string): Promise<void> {
  await fsp.mkdir(to, { recursive: true });
  if (!fs.existsSync(from) || (await fsp.readdir(from)).length === 0) return;
  await exec('cp', ['-a', '--sparse=always', '--reflink=auto', '--', `${from}/.`, to]);
}

async function emptyDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  for (const f of await fsp.readdir(dir)) await fsp.rm(path.join(dir, f), { recursive: true, force: true });
}

export interface StateInfo {
  name: string;
  saved: string;
  rows: number;
  bytes: number;
}

export function listStates(places: StatePlaces): StateInfo[] {
  if (!fs.existsSync(places.statesDir)) return [];
  const out: StateInfo[] = [];
  for (const name of fs.readdirSync(places.statesDir).sort()) {
    const meta = path.join(places.statesDir, name, 'state.json');
    if (!fs.existsSync(meta)) continue; // a save in progress, or not ours
    out.push({ name, ...(JSON.parse(fs.readFileSync(meta, 'utf8')) as Omit<StateInfo, 'name'>) });
  }
  return out;
}

function stateDir(places: StatePlaces, name: string): string {
  if (!STATE_NAME.test(name)) throw new StateError(`a state's name is letters, digits, '.', '_' and '-' (at most 64), not ${JSON.stringify(name)}`, 'invalid');
  return path.join(places.statesDir, name);
}

/**
 * Saves every application table's rows (one read transaction) and a copy of the drive bytes under
 * <states>/NAME/, replacing a state of that name once the new one is complete.
 */
export async function saveState(store: Store, places: StatePlaces, name: string): Promise<StateInfo> {
  const dir = stateDir(places, name);
  const tmp = `${dir}.saving-${process.pid}-${Date.now()}`;
  await fsp.mkdir(tmp, { recursive: true });
  try {
    let rows = 0;
    const out = fs.openSync(path.join(tmp, 'rows.jsonl'), 'w');
    try {
      await store.db.transaction().execute(async (trx) => {
        // One snapshot for every table (PostgreSQL's default isolation takes one per statement).
        if (store.dialect.name === 'postgres') await sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`.execute(trx);
        for (const t of await tables(store, trx)) {
          if (t === 'row_counts') continue;
          const sel =
            store.dialect.name === 'postgres'
              ? (await sql<{ r: Record<string, unknown> }>`SELECT row_to_json(x) AS r FROM ${sql.table(t)} x`.execute(trx)).rows.map((r) => r.r)
              : (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(t)}`.execute(trx)).rows.map(encode);
          fs.writeSync(out, `${JSON.stringify({ table: t, rows: sel })}\n`);
          rows += sel.length;
        }
        // Bytes copied inside the read transaction: a drive committed after it began is not in the rows either.
        for (const [k, live] of Object.entries(places.dirs)) await copyContents(live, path.join(tmp, k));
      });
    } finally {
      fs.closeSync(out);
    }
    const { stdout } = await exec('du', ['-sk', tmp]);
    const info = { saved: new Date().toISOString(), rows, bytes: Number(stdout.split(/\s/)[0]) * 1024 };
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(info));
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(tmp, dir);
    return { name, ...info };
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function deleteState(places: StatePlaces, name: string): Promise<void> {
  const dir = stateDir(places, name);
  if (!fs.existsSync(path.join(dir, 'state.json'))) throw new StateError(`no saved state named ${name}`, 'missing');
  await fsp.rm(dir, { recursive: true, force: true });
}

/**
 * Replaces every row of every application table by the saved ones in one write transaction, then the drive bytes.
 * Restored documents get a version above any this installation has shown (see bumpVersions), so no API node's
 * wire cache answers for them from what it served before.
 */
export async function loadState(store: Store, places: StatePlaces, name: string): Promise<StateInfo> {
  const dir = stateDir(places, name);
  const info = listStates(places).find((s) => s.name === name);
  if (!info) throw new StateError(`no saved state named ${name}`, 'missing');
  const saved = fs
    .readFileSync(path.join(dir, 'rows.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { table: string; rows: Record<string, unknown>[] });
  // Bytes first: a row that names a drive finds its image once the transaction commits.
  for (const [k, live] of Object.entries(places.dirs)) {
    await emptyDir(live);
    await copyContents(path.join(dir, k), live);
  }
  await replaceRows(store, saved);
  return info;
}

/** Empties the installation: every object and its bytes; the accounts (and their tokens) stay unless `all`, which keeps only `keepUser`. */
export async function resetState(store: Store, places: StatePlaces, opts: { all?: boolean; keepUser?: string | null } = {}): Promise<void> {
  const kept = await store.transaction(async (trx) => {
    const out: Array<{ table: string; rows: Record<string, unknown>[] }> = [];
    if (opts.all && !opts.keepUser) return out;
    for (const t of ACCOUNT_TABLES) {
      const keepUser = opts.keepUser!;
      const rows =
        t === 'users'
          ? trx
              .selectFrom('users')
              .selectAll()
              .$if(!!opts.all, (qb) => qb.where('email', '=', keepUser))
          : t === 'tokens'
            ? trx
                .selectFrom('tokens')
                .selectAll()
                .$if(!!opts.all, (qb) => qb.where('user_uuid', 'in', trx.selectFrom('users').select('uuid').where('email', '=', keepUser)))
            : opts.all
              ? null // (credential_changes has no user column: `all` keeps none of it)
              : trx.selectFrom('credential_changes').selectAll();
      out.push({ table: t, rows: rows ? ((await rows.execute().catch(() => [])) as Record<string, unknown>[]) : [] });
    }
    return out;
  });
  if (store.dialect.name === 'postgres') for (const k of kept) k.rows = k.rows.map(toJsonable);
  for (const live of Object.values(places.dirs)) await emptyDir(live);
  await replaceRows(store, kept);
}

const toJsonable = (r: Record<string, unknown>) => JSON.parse(JSON.stringify(r)) as Record<string, unknown>;

async function replaceRows(store: Store, saved: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<void> {
  const pgsql = store.dialect.name === 'postgres';
  await store.db.transaction().execute(async (trx) => {
    // Foreign keys are checked at the commit (SQLite) or not by row (PostgreSQL's replica role, which also keeps the
    // row-count triggers quiet: row_counts is rebuilt below from the restored rows).
    if (pgsql) await sql`SET LOCAL session_replication_role = replica`.execute(trx);
    else await sql`PRAGMA defer_foreign_keys = ON`.execute(trx);
    const names = await tables(store, trx);
    const floor = await versionFloor(store, trx, names);
    for (const t of names) await sql`DELETE FROM ${sql.table(t)}`.execute(trx);
    for (const { table, rows } of saved) {
      if (!names.includes(table) || !rows.length) continue;
      const cols = new Set(await columns(store, trx, table));
      if (pgsql) {
        // One statement per table; PostgreSQL turns the JSON back into each column's type.
        await sql`INSERT INTO ${sql.table(table)} SELECT * FROM json_populate_recordset(null::${sql.table(table)}, ${JSON.stringify(rows)}::json)`.execute(trx);
      } else {
        const keys = Object.keys(rows[0]!).filter((k) => cols.has(k));
        const text = `INSERT INTO ${q(table)} (${keys.map(q).join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`;
        for (const r of rows)
          await trx.executeQuery(
            CompiledQuery.raw(
              text,
              keys.map((k) => decode(r[k])),
            ),
          );
      }
    }
    // An operation an agent was running when the state was saved has nobody running it now (that agent may be gone,
    // or believe it finished it): it waits to be claimed again. Its steps ask the driver first, so doing one again is safe.
    if (names.includes('operations'))
      await trx.updateTable('operations').set({ state: 'pending', claimed_by: null, claimed_at: null }).where('state', '=', 'running').execute();
    if (names.includes('row_counts')) await rebuildRowCounts(trx, names);
    if (names.includes('server_references')) await store.servers.rebuildReferences(trx);
    for (const t of names) if ((await columns(store, trx, t)).includes('version')) await sql`UPDATE ${sql.table(t)} SET version = ${floor}`.execute(trx);
    if (pgsql) await resetSequences(trx);
  });
}

/** Seconds since 2025 (an int32 column holds them for decades) or above every version in the tables, whichever is more:
 * a version no cache entry can hold, even one made from a row deleted since, unless it was edited faster than the clock. */
async function versionFloor(store: Store, trx: Kysely<Database>, names: string[]): Promise<number> {
  let max = Math.floor((Date.now() - Date.UTC(2025, 0, 1)) / 1000);
  for (const t of names) {
    if (!(await columns(store, trx, t)).includes('version')) continue;
    const r = await sql<{ v: number | null }>`SELECT max(version) AS v FROM ${sql.table(t)}`.execute(trx);
    max = Math.max(max, Number(r.rows[0]?.v ?? 0) + 1);
  }
  return max;
}

async function rebuildRowCounts(trx: Kysely<Database>, names: string[]): Promise<void> {
  await sql`DELETE FROM row_counts`.execute(trx);
  for (const t of COUNTED_TABLES.filter((x) => names.includes(x)))
    await sql`INSERT INTO row_counts (tbl, owner_key, n) SELECT ${t}, coalesce(owner, ''), count(*) FROM ${sql.table(t)} GROUP BY coalesce(owner, '')`.execute(
      trx,
    );
}

/** Serial columns continue after the restored rows' ids. */
async function resetSequences(trx: Kysely<Database>): Promise<void> {
  const cols = await sql<{ t: string; c: string }>`SELECT table_name AS t, column_name AS c FROM information_schema.columns
    WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'`.execute(trx);
  for (const { t, c } of cols.rows) {
    await sql`SELECT setval(pg_get_serial_sequence(${t}, ${c}), coalesce((SELECT max(${sql.ref(c)}) FROM ${sql.table(t)}), 0) + 1, false)`.execute(trx);
  }
}
