import type { Insertable, Selectable } from 'kysely';
import type { Dialect } from './dialect/index.ts';
import type { AuditLogTable, Db } from './schema.ts';

export type AuditEntry = Selectable<AuditLogTable>;

/** What a list of an account's audit log may be narrowed to (each filter: one of the values). */
export interface AuditQuery {
  limit: number;
  offset: number;
  uuid?: string[];
  category?: string[];
  action?: string[];
}

/** Each account's audit log: one row per change made to its objects (or refused), newest last. */
export class AuditLogRepo {
  constructor(private readonly dialect: Dialect) {}

  private get db(): Db {
    return this.dialect.db;
  }

  /** Appends one entry (in the transaction that made the change it reports, when there is one). */
  async append(entry: Insertable<AuditLogTable>, trx: Db = this.db): Promise<void> {
    await trx.insertInto('audit_log').values(entry).execute();
  }

  /** A page of an account's entries, newest first, with how many match in all. */
  async list(owner: string, q: AuditQuery): Promise<{ total: number; items: AuditEntry[] }> {
    let base = this.db.selectFrom('audit_log').where('owner', '=', owner);
    if (q.uuid) base = base.where('resource_uuid', 'in', q.uuid);
    if (q.category) base = base.where('category', 'in', q.category);
    if (q.action) base = base.where('action', 'in', q.action);
    const total = Number((await base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
    let page = base.selectAll().orderBy('id', 'desc');
    if (q.limit > 0) page = page.limit(q.limit);
    // SQLite has no OFFSET without a LIMIT; -1 is its "no limit".
    if (q.offset > 0) page = (q.limit === 0 && this.dialect.name === 'sqlite' ? page.limit(-1) : page).offset(q.offset);
    return { total, items: await page.execute() };
  }
}
