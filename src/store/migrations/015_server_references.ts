import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * What a server's document names, mirrored in rows so that the servers using an IP, a VLAN or a key are one indexed
 * query instead of a LIKE scan of every server document: a NIC's static (or DHCP, manual) IPv4/IPv6 address with its
 * conf, a NIC's VLAN, and each public key. `mac` is '' for a key. The store rewrites a server's rows with each write
 * of its document; this migration fills them for the servers that exist.
 */
export function serverReferences(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('server_references')
        .ifNotExists()
        .addColumn('server_uuid', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull()) // ip | vlan | pubkey
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .addColumn('conf', 'text', (c) => c.notNull()) // static | dhcp | manual for an ip, '' otherwise
        .addPrimaryKeyConstraint('server_references_pk', ['server_uuid', 'kind', 'ref', 'mac'])
        .execute();
      await db.schema.createIndex('server_references_ref').ifNotExists().on('server_references').columns(['kind', 'ref', 'server_uuid']).execute();

      type Conf = { conf?: string; ip?: string | null } | null | undefined;
      type Doc = { nics?: Array<{ mac: string; vlan?: string | null; ip_v4_conf?: Conf; ip_v6_conf?: Conf }>; pubkeys?: string[] };
      const servers = (await db.selectFrom('servers').select(['uuid', 'data']).execute()) as Array<{ uuid: string; data: string }>;
      for (const s of servers) {
        const doc = JSON.parse(s.data) as Doc;
        const rows = new Map<string, { server_uuid: string; kind: string; ref: string; mac: string; conf: string }>();
        const add = (kind: string, ref: string, mac: string, conf: string) => rows.set(`${kind} ${ref} ${mac}`, { server_uuid: s.uuid, kind, ref, mac, conf });
        for (const n of doc.nics ?? []) {
          if (n.vlan) add('vlan', n.vlan, n.mac, '');
          for (const c of [n.ip_v4_conf, n.ip_v6_conf]) if (c?.ip) add('ip', c.ip, n.mac, c.conf ?? '');
        }
        for (const k of doc.pubkeys ?? []) add('pubkey', k, '', '');
        if (rows.size) await db.insertInto('server_references').values([...rows.values()]).execute();
      }
    },
  };
}
