import type { Dialect } from './dialect/index.ts';
import type { Db } from './schema.ts';

/** Each account's global server context: one dict of strings that every server of it sees in its context. */
export class GlobalContextRepo {
  constructor(private readonly dialect: Dialect) {}

  private get db(): Db {
    return this.dialect.db;
  }

  /** The account's dict ({} when it never set one). */
  async of(user: string, trx: Db = this.db): Promise<Record<string, string>> {
    const row = await trx.selectFrom('global_contexts').select('data').where('user_uuid', '=', user).executeTakeFirst();
    return row ? (JSON.parse(row.data) as Record<string, string>) : {};
  }

  /** Replaces the account's whole dict. */
  async replace(user: string, data: Record<string, string>, trx: Db = this.db): Promise<void> {
    const row = { data: JSON.stringify(data), updated_at: new Date().toISOString() };
    await trx
      .insertInto('global_contexts')
      .values({ user_uuid: user, ...row })
      .onConflict((oc) => oc.column('user_uuid').doUpdateSet(row))
      .execute();
  }
}
