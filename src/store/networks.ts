import type { Kysely } from 'kysely';
import type { Dialect } from './dialect/index.ts';
import { DocumentTable, type Stored } from './documents.ts';
import type { IpDoc, SubscriptionDoc, VlanDoc } from './index.ts';
import type { Database } from './schema.ts';

/** What IPs and VLANs share: an account holds each for as long as its subscription chain runs. */
class HeldObjectTable<T extends { uuid: string }> extends DocumentTable<T> {
  /** Which of `uuids` the account still holds, 500 to a query. */
  async heldBy(owner: string, uuids: string[]): Promise<Set<string>> {
    const table = this.table as 'ips' | 'vlans';
    const held = new Set<string>();
    for (let i = 0; i < uuids.length; i += 500) {
      const rows = await this.dialect.db
        .selectFrom(table)
        .select('uuid')
        .where('owner', '=', owner)
        .where('uuid', 'in', uuids.slice(i, i + 500))
        .execute();
      for (const r of rows) held.add(r.uuid);
    }
    return held;
  }
}

export class IpTable extends HeldObjectTable<IpDoc> {
  constructor(dialect: Dialect) {
    // IPs have no name field; the name filter matches meta.name, which is how clients name them.
    super(dialect, 'ips', 'ips', (d) => ({ name: d.meta.name ?? '' }));
  }
}

export class VlanTable extends HeldObjectTable<VlanDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'vlans', 'vlans', (d) => ({ name: d.meta.name ?? '', slot: d.slot }));
  }

  /** The pool slots VLANs hold. */
  async takenSlots(trx: Kysely<Database> = this.dialect.db): Promise<Set<number>> {
    return new Set((await trx.selectFrom('vlans').select('slot').execute()).map((r) => Number(r.slot)));
  }
}

export class SubscriptionTable extends DocumentTable<SubscriptionDoc> {
  constructor(dialect: Dialect) {
    super(
      dialect,
      'subscriptions',
      'subscriptions',
      (d) => ({ resource: d.resource, subscribed_object: d.subscribed_object }),
      new Set(['uuid', 'status', 'resource', 'subscribed_object']),
    );
  }

  /** The subscription with this id (its seq, which clients see as `id`), if any. */
  async bySeq(seq: number, trx: Kysely<Database> = this.dialect.db): Promise<Stored<SubscriptionDoc> | undefined> {
    const row = await trx.selectFrom('subscriptions').select('uuid').where('seq', '=', seq).executeTakeFirst();
    return row ? this.get(row.uuid, trx) : undefined;
  }

  /** The subscriptions with these ids, in no order; unknown ids are left out. */
  async bySeqs(seqs: number[], trx: Kysely<Database> = this.dialect.db): Promise<Array<Stored<SubscriptionDoc>>> {
    const out: Array<Stored<SubscriptionDoc>> = [];
    const unique = [...new Set(seqs)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await trx
        .selectFrom('subscriptions')
        .select('uuid')
        .where('seq', 'in', unique.slice(i, i + 500))
        .execute();
      out.push(
        ...(await this.getMany(
          rows.map((r) => r.uuid),
          trx,
        )),
      );
    }
    return out;
  }

  /**
   * The accounts a sweep of every account visits: those with a subscription still running, and those holding an IP
   * or VLAN in `heldOverStatus` (its chain ended while a server used it).
   */
  async ownersToSweep(heldOverStatus: string): Promise<string[]> {
    const db = this.dialect.db;
    const rows = await db
      .selectFrom('subscriptions')
      .select('owner')
      .where('status', '!=', 'expired')
      .union(db.selectFrom('ips').select('owner').where('status', '=', heldOverStatus))
      .union(db.selectFrom('vlans').select('owner').where('status', '=', heldOverStatus))
      .execute();
    return rows.flatMap((r) => (r.owner === null ? [] : [r.owner]));
  }
}
