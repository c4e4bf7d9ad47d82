import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * IPs and VLANs whose subscription chain ended while a server used them carry status `ended` (see the subscription
 * sweep): the background sweep finds their accounts through this index, not by visiting every account.
 */
export function endedNetworkObjects(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      for (const table of ['ips', 'vlans']) {
        await db.schema.createIndex(`${table}_status_owner`).ifNotExists().on(table).columns(['status', 'owner']).execute();
        // Objects held over before this migration: their subscription has already been expired by a sweep.
        const rows = (await db.selectFrom(table).select(['uuid', 'data']).execute()) as Array<{ uuid: string; data: string }>;
        for (const r of rows) {
          const seq = (JSON.parse(r.data) as { subscription: number | null }).subscription;
          if (seq === null) continue;
          const sub = await db.selectFrom('subscriptions').select('status').where('seq', '=', seq).executeTakeFirst();
          if (sub?.status === 'expired') await db.updateTable(table).set({ status: 'ended' }).where('uuid', '=', r.uuid).execute();
        }
      }
    },
  };
}
