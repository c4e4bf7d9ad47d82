import { sql, type ExpressionBuilder, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Dialect } from './dialect/index.ts';
import { Prepared } from './prepared.ts';
import type { Database, DocTableName } from './schema.ts';

/** A condition from a list query: values are OR-ed, conditions are AND-ed. */
export interface Condition {
  column: string;
  op: 'exact' | 'contains';
  values: string[];
}

export interface ListQuery {
  /** Only objects of this owner; undefined = every owner (library drives have owner null). */
  owner?: string | null;
  /** Restrict to these uuids (ACL-shared objects, tag members...). */
  uuids?: string[];
  /** Objects of `owner` and also these (shared with the actor through ACLs). */
  orUuids?: string[];
  conditions: Condition[];
  /** tag uuids: each inner list is OR-ed, the lists are AND-ed. */
  tags: string[][];
  /** tag names: as tags. */
  tagNames: string[][];
  /** Tag filters match only tags of this user: a grantee's filter must not tell which of the owner's tags an object has. */
  tagOwner?: string;
  orderBy?: { column: string; desc: boolean };
  limit: number; // 0 = all
  offset: number;
}

export interface Stored<T> {
  seq: number;
  uuid: string;
  owner: string | null;
  status: string;
  version: number;
  doc: T;
  /** the row's columns: those of BASE_COLUMNS and the table's `rowColumns` */
  row: Record<string, unknown>;
  /** Whether a started job works on it: known when it was read alone (get), so its render needs no jobs query. */
  busy?: boolean;
}

/** What a list page says of each object before its document is read. */
export interface PageKey {
  uuid: string;
  version: number;
  status: string;
  busy: boolean;
}

/**
 * Document tables whose rows per owner row_counts keeps exact (migration 004 installed their triggers; a migration
 * that counts another table adds it here). A list's total comes from there instead of a COUNT.
 */
export const COUNTED_TABLES: readonly string[] = ['servers', 'drives', 'tags', 'keypairs'];

/** An object of a page read without its document (a class: a page makes a hundred of them). */
class KeyOnly<T> implements Stored<T> {
  readonly row: Record<string, unknown>;
  busy?: boolean;
  constructor(
    readonly seq: number,
    readonly uuid: string,
    readonly owner: string,
    readonly status: string,
    readonly version: number,
  ) {
    this.row = { uuid, version, status };
  }
  get doc(): T {
    throw new Error(`the document of ${this.uuid} was not read`);
  }
}

const keyOnly = <T>(owner: string, k: PageKey & { seq: number }): Stored<T> => new KeyOnly<T>(k.seq, k.uuid, owner, k.status, k.version);

const now = () => new Date().toISOString();

/**
 * A DocumentTable's table is named at run time, so Kysely cannot check its queries against the schema: they go
 * through this untyped handle (the columns they use are DocColumns and the subclass's, see schema.ts).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the table name is a run-time value
type Untyped = Kysely<any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- conditions on that handle's run-time table
type UntypedEb = ExpressionBuilder<any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a query on that handle's run-time table, before its columns are chosen
type UntypedSelect = SelectQueryBuilder<any, any, object>;
const untyped = (db: Kysely<Database>): Untyped => db as Untyped;

/** Columns every document table has and every read returns. */
const BASE_COLUMNS = ['seq', 'uuid', 'owner', 'status', 'version', 'data', 'created_at'];

/**
 * A table of JSON documents with a few indexed columns. Every resource uses one; the columns other than `data` are
 * derived from the document by `columns` on each write, so they can never disagree with it.
 */
export class DocumentTable<T extends { uuid: string }> {
  constructor(
    readonly dialect: Dialect,
    readonly table: DocTableName,
    readonly resourceType: string,
    protected readonly columns: (doc: T) => Record<string, unknown>,
    readonly filterable: ReadonlySet<string> = new Set(['name', 'uuid', 'status']),
    rowColumns: string[] = [],
  ) {
    this.counted = COUNTED_TABLES.includes(table);
    this.selected = [...BASE_COLUMNS, ...rowColumns];
  }

  /**
   * What reads fetch: the document and the columns code reads from `row`, not the columns derived from the document
   * (building a JavaScript object per row costs by the column, and a page of 100 servers paid twice for them).
   */
  private readonly selected: string[];

  /** Whether row_counts keeps this table's rows per owner. */
  private readonly counted: boolean;

  private get db(): Kysely<Database> {
    return this.dialect.db;
  }

  /** The document is parsed when first read: a list page whose wire bytes are cached never reads it. */
  private toStored(row: Record<string, unknown>): Stored<T> {
    let doc: T | undefined;
    return {
      seq: Number(row.seq),
      uuid: row.uuid as string,
      owner: (row.owner as string | null | undefined) ?? null,
      status: row.status as string,
      version: Number(row.version),
      get doc(): T {
        return (doc ??= JSON.parse(row.data as string) as T);
      },
      set doc(value: T) {
        doc = value;
      },
      row,
    };
  }

  /** Whether a started job works on the row: every rendering of a resource shows its jobs. */
  private readonly busy = (eb: UntypedEb) =>
    eb
      .exists(
        eb
          .selectFrom('job_resources as jr')
          .innerJoin('jobs as j', 'j.uuid', 'jr.job_uuid')
          .select('jr.job_uuid')
          .whereRef('jr.resource_uuid', '=', `${this.table}.uuid`)
          .where('j.status', '=', 'started'),
      )
      .as('busy');

  private readonly byUuid = new Prepared((db, uuid: string) =>
    untyped(db).selectFrom(this.table).select(this.selected).select(this.busy).where('uuid', '=', uuid),
  );

  private toStoredWithBusy(row: Record<string, unknown>): Stored<T> {
    const stored = this.toStored(row);
    stored.busy = row.busy === true || Number(row.busy) === 1;
    return stored;
  }

  /** One object by uuid, in one query with whether a job works on it (every GET of a resource asks both). */
  async get(uuid: string, trx: Kysely<Database> = this.db): Promise<Stored<T> | undefined> {
    const [row] = await this.byUuid.execute(trx, uuid);
    return row ? this.toStoredWithBusy(row as Record<string, unknown>) : undefined;
  }

  /** Every row of one owner (null: the library's), oldest first. */
  async ownedBy(owner: string | null, trx: Kysely<Database> = this.db): Promise<Stored<T>[]> {
    const rows = await untyped(trx)
      .selectFrom(this.table)
      .select(this.selected)
      .where('owner', owner === null ? 'is' : '=', owner)
      .orderBy('seq')
      .execute();
    return rows.map((r) => this.toStored(r));
  }

  /** Every row in one of `statuses`, oldest first (what recovery after a restart looks for). */
  async withStatus(statuses: string[], trx: Kysely<Database> = this.db): Promise<Stored<T>[]> {
    const rows = await untyped(trx).selectFrom(this.table).select(this.selected).where('status', 'in', statuses).orderBy('seq').execute();
    return rows.map((r) => this.toStored(r));
  }

  /** How many rows are in each status. */
  async countByStatus(trx: Kysely<Database> = this.db): Promise<Array<{ status: string; n: number }>> {
    const rows = await untyped(trx)
      .selectFrom(this.table)
      .select(['status', (eb) => eb.fn.countAll().as('n')])
      .groupBy('status')
      .execute();
    return rows.map((r: { status: string; n: unknown }) => ({ status: r.status, n: Number(r.n) }));
  }

  /**
   * Locks the rows of `uuids` for the rest of the transaction (a no-op on SQLite, whose writer holds the whole
   * database) and says which exist: two transactions that lock a row first take turns on it.
   */
  async lock(uuids: string[], trx: Kysely<Database>): Promise<string[]> {
    if (uuids.length === 0) return [];
    const rows = await this.dialect.lockRows(untyped(trx).selectFrom(this.table).select('uuid').where('uuid', 'in', uuids)).execute();
    return rows.map((r: { uuid: string }) => r.uuid);
  }

  /** The uuid of every row (an IP's is its address). */
  async uuids(trx: Kysely<Database> = this.db): Promise<string[]> {
    return (await untyped(trx).selectFrom(this.table).select('uuid').execute()).map((r: { uuid: string }) => r.uuid);
  }

  async getMany(uuids: string[], trx: Kysely<Database> = this.db): Promise<Stored<T>[]> {
    if (uuids.length === 0) return [];
    const rows = await untyped(trx).selectFrom(this.table).select(this.selected).where('uuid', 'in', uuids).orderBy('seq').execute();
    return rows.map((r) => this.toStored(r));
  }

  /** Run in the transaction of every insert of an owned object: the account's quota (set by the composition root). */
  beforeInsert: ((owner: string, doc: T, trx: Kysely<Database>) => Promise<void>) | null = null;

  async insert(owner: string | null, doc: T, status: string, trx: Kysely<Database> = this.db): Promise<void> {
    if (owner !== null && this.beforeInsert) await this.beforeInsert(owner, doc, trx);
    const t = now();
    await untyped(trx)
      .insertInto(this.table)
      .values({ uuid: doc.uuid, owner, status, data: JSON.stringify(doc), version: 1, created_at: t, updated_at: t, ...this.columns(doc) })
      .execute();
  }

  /** Inserts unless a unique column (the uuid, a pool slot) is already taken; says whether it did. Never aborts the transaction. */
  async insertIfFree(owner: string | null, doc: T, status: string, trx: Kysely<Database> = this.db): Promise<boolean> {
    if (owner !== null && this.beforeInsert) await this.beforeInsert(owner, doc, trx);
    const t = now();
    const res = await untyped(trx)
      .insertInto(this.table)
      .values({ uuid: doc.uuid, owner, status, data: JSON.stringify(doc), version: 1, created_at: t, updated_at: t, ...this.columns(doc) })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /**
   * Writes the document. With `expectedVersion`, only if nobody wrote it since (optimistic concurrency);
   * with `expectedStatus`, only if the status is one of those. Returns whether the row was written.
   */
  async update(
    doc: T,
    opts: { status?: string; expectedVersion?: number; expectedStatus?: string[]; extra?: Record<string, unknown> } = {},
    trx: Kysely<Database> = this.db,
  ): Promise<boolean> {
    let q = untyped(trx)
      .updateTable(this.table)
      .set({
        data: JSON.stringify(doc),
        version: sql`version + 1`,
        updated_at: now(),
        ...(opts.status !== undefined ? { status: opts.status } : {}),
        ...this.columns(doc),
        ...(opts.extra ?? {}),
      })
      .where('uuid', '=', doc.uuid);
    if (opts.expectedVersion !== undefined) q = q.where('version', '=', opts.expectedVersion);
    if (opts.expectedStatus) q = q.where('status', 'in', opts.expectedStatus);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Changes status (and other columns) only if the current status is one of `from`. The atomic step of every action. */
  async transition(uuid: string, from: string[], to: string, extra: Record<string, unknown> = {}, trx: Kysely<Database> = this.db): Promise<boolean> {
    const res = await untyped(trx)
      .updateTable(this.table)
      .set({ status: to, version: sql`version + 1`, updated_at: now(), ...extra })
      .where('uuid', '=', uuid)
      .where('status', 'in', from)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** transition() for every row whose `column` is one of `values`; returns the rows it changed. */
  async transitionWhere(
    column: string,
    values: string[],
    from: string[],
    to: string,
    trx: Kysely<Database> = this.db,
  ): Promise<Array<{ uuid: string; owner: string | null }>> {
    if (values.length === 0) return [];
    return (await untyped(trx)
      .updateTable(this.table)
      .set({ status: to, version: sql`version + 1`, updated_at: now() })
      .where(column, 'in', values)
      .where('status', 'in', from)
      .returning(['uuid', 'owner'])
      .execute()) as Array<{ uuid: string; owner: string | null }>;
  }

  async setColumns(uuid: string, values: Record<string, unknown>, trx: Kysely<Database> = this.db): Promise<void> {
    await untyped(trx)
      .updateTable(this.table)
      .set({ ...values, updated_at: now() })
      .where('uuid', '=', uuid)
      .execute();
  }

  async delete(uuid: string, trx: Kysely<Database> = this.db): Promise<boolean> {
    const res = await untyped(trx).deleteFrom(this.table).where('uuid', '=', uuid).executeTakeFirst();
    await trx.deleteFrom('resource_tags').where('resource_uuid', '=', uuid).execute();
    return Number(res.numDeletedRows) === 1;
  }

  async setTags(uuid: string, tagUuids: string[], trx: Kysely<Database> = this.db): Promise<void> {
    await trx.deleteFrom('resource_tags').where('resource_uuid', '=', uuid).where('resource_type', '=', this.resourceType).execute();
    const unique = [...new Set(tagUuids)];
    if (unique.length)
      await trx
        .insertInto('resource_tags')
        .values(unique.map((t) => ({ tag_uuid: t, resource_type: this.resourceType, resource_uuid: uuid })))
        .execute();
  }

  /** A page of one owner's objects, unfiltered: what clients ask for most, so built and compiled once. */
  private readonly ownerPage = new Prepared((db, owner: string, limit: number, offset: number) =>
    untyped(db).selectFrom(this.table).select(this.selected).select(this.busy).where('owner', '=', owner).orderBy('seq').limit(limit).offset(offset),
  );

  private readonly ownerCount = new Prepared((db, owner: string) =>
    db.selectFrom('row_counts').select('n').where('tbl', '=', this.table).where('owner_key', '=', owner),
  );

  /** The keys of a page of one owner's objects (for servers, read from an index that holds them all). */
  private readonly ownerPageKeys = new Prepared((db, owner: string, limit: number, offset: number) =>
    untyped(db)
      .selectFrom(this.table)
      .select(['seq', 'uuid', 'version', 'status'])
      .select(this.busy)
      .where('owner', '=', owner)
      .orderBy('seq')
      .limit(limit)
      .offset(offset),
  );

  /** An owner's unfiltered page: the query clients send most. */
  private ownerPageOf(q: ListQuery): string | null {
    const plain =
      !q.orUuids?.length && !q.uuids && !q.tags.length && !q.tagNames.length && !q.orderBy && !q.conditions.some((c) => this.filterable.has(c.column));
    return plain && this.counted && typeof q.owner === 'string' && q.limit > 0 ? q.owner : null;
  }

  private async ownerTotal(owner: string, trx: Kysely<Database>): Promise<number> {
    const [count] = await this.ownerCount.execute(trx, owner);
    return Number((count as { n?: unknown } | undefined)?.n ?? 0);
  }

  /**
   * list(), except that on an owner's unfiltered page the objects `reusable` accepts by their keys come without their
   * document (reading it throws): the caller still holds what it made of them. The others are read whole.
   */
  async listReusing(
    q: ListQuery,
    reusable: ((key: PageKey) => boolean) | null,
    trx: Kysely<Database> = this.db,
  ): Promise<{ total: number; items: Stored<T>[] }> {
    const owner = this.ownerPageOf(q);
    if (owner === null || reusable === null) return this.list(q, trx);
    const total = await this.ownerTotal(owner, trx);
    const keys = (await this.ownerPageKeys.execute(trx, owner, q.limit, q.offset)).map((r: Record<string, unknown>): PageKey & { seq: number } => ({
      seq: Number(r.seq),
      uuid: r.uuid as string,
      version: Number(r.version),
      status: r.status as string,
      busy: r.busy === true || Number(r.busy) === 1,
    }));
    const reuse = keys.map(reusable);
    // Nothing to reuse (a page seen for the first time): the page query reads every row in one pass of the index.
    if (!reuse.includes(true))
      return { total, items: (await this.ownerPage.execute(trx, owner, q.limit, q.offset)).map((r) => this.toStoredWithBusy(r as Record<string, unknown>)) };
    const whole = new Map(
      (
        await this.getMany(
          keys.filter((_, i) => !reuse[i]).map((k) => k.uuid),
          trx,
        )
      ).map((s) => [s.uuid, s]),
    );
    const items: Stored<T>[] = [];
    keys.forEach((k, i) => {
      const s = reuse[i] ? keyOnly<T>(owner, k) : whole.get(k.uuid); // gone since the keys were read: left out
      if (!s) return;
      s.busy = k.busy;
      items.push(s);
    });
    return { total, items };
  }

  async list(q: ListQuery, trx: Kysely<Database> = this.db): Promise<{ total: number; items: Stored<T>[] }> {
    const owner = this.ownerPageOf(q);
    if (owner !== null) {
      const total = await this.ownerTotal(owner, trx);
      const rows = await this.ownerPage.execute(trx, owner, q.limit, q.offset);
      return { total, items: rows.map((r: Record<string, unknown>) => this.toStoredWithBusy(r)) };
    }
    let base = untyped(trx).selectFrom(this.table);
    if (q.owner !== undefined && q.orUuids?.length) {
      const owner = q.owner;
      const also = q.orUuids;
      base = base.where((eb: UntypedEb) => eb.or([owner === null ? eb('owner', 'is', null) : eb('owner', '=', owner), eb('uuid', 'in', also)]));
    } else if (q.owner !== undefined) base = q.owner === null ? base.where('owner', 'is', null) : base.where('owner', '=', q.owner);
    if (q.uuids) base = q.uuids.length ? base.where('uuid', 'in', q.uuids) : base.where(sql<boolean>`1 = 0`);
    for (const c of q.conditions) {
      if (!this.filterable.has(c.column)) continue;
      if (c.op === 'exact') base = base.where(c.column, 'in', c.values);
      else
        base = base.where((eb: UntypedEb) =>
          eb.or(c.values.map((v) => sql<boolean>`lower(${sql.ref(c.column)}) like ${'%' + escapeLike(v.toLowerCase()) + '%'} escape '\\'`)),
        );
    }
    const tagOwner = q.tagOwner;
    for (const group of q.tags) {
      base = base.where('uuid', 'in', (eb: UntypedEb) => {
        const members = eb.selectFrom('resource_tags').select('resource_uuid').where('resource_type', '=', this.resourceType);
        if (tagOwner === undefined) return members.where('tag_uuid', 'in', group);
        return members.where('tag_uuid', 'in', (tb: UntypedEb) =>
          tb.selectFrom('tags').select('uuid').where('uuid', 'in', group).where('owner', '=', tagOwner),
        );
      });
    }
    for (const group of q.tagNames) {
      base = base.where('uuid', 'in', (eb: UntypedEb) =>
        eb
          .selectFrom('resource_tags')
          .innerJoin('tags', 'tags.uuid', 'resource_tags.tag_uuid')
          .select('resource_tags.resource_uuid')
          .where('resource_tags.resource_type', '=', this.resourceType)
          .where('tags.name', 'in', group)
          .$if(tagOwner !== undefined, (sq) => sq.where('tags.owner', '=', tagOwner)),
      );
    }
    const total = await this.count(base, q, trx);
    let page = base.select(this.selected).select(this.busy);
    if (q.orderBy && (this.filterable.has(q.orderBy.column) || q.orderBy.column === 'seq'))
      page = page.orderBy(q.orderBy.column, q.orderBy.desc ? 'desc' : 'asc');
    page = page.orderBy('seq');
    if (q.limit > 0) page = page.limit(q.limit);
    if (q.offset > 0) page = q.limit > 0 ? page.offset(q.offset) : this.dialect.offsetOnly(page, q.offset);
    const rows = await page.execute();
    return { total, items: rows.map((r: Record<string, unknown>) => this.toStoredWithBusy(r)) };
  }

  /** total_count: an owner's whole table comes from row_counts (one row read); a filtered list counts its matches. */
  private async count(base: UntypedSelect, q: ListQuery, trx: Kysely<Database>): Promise<number> {
    // row_counts counts an owner's own rows: objects shared with the actor (orUuids) must be counted with them.
    const filtered = q.uuids || q.orUuids?.length || q.tags.length || q.tagNames.length || q.conditions.some((c) => this.filterable.has(c.column));
    if (this.counted && q.owner !== undefined && !filtered) return this.ownerTotal(q.owner ?? '', trx);
    const row = await base.select((eb: UntypedEb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

function escapeLike(s: string): string {
  // Both databases treat % and _ as wildcards; a literal match is what users mean by "contains".
  return s.replace(/[\\%_]/g, (m) => '\\' + m);
}
