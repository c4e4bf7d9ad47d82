import type { FirewallRule } from '../domain/firewall.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import type { Db } from './schema.ts';

/** A firewall policy: rules in their normalised wire form; which NICs use it is in nic_firewall_policies. */
export interface FwPolicyDoc {
  uuid: string;
  name: string | null;
  meta: Record<string, string>;
  rules: FirewallRule[];
  tags: string[];
}

type NicsOf = Pick<ServerDef, 'uuid' | 'nics'>;

/** The NIC -> policy rows a server definition implies. */
function links(def: NicsOf): Array<{ server_uuid: string; mac: string; policy_uuid: string }> {
  return def.nics.filter((n) => n.firewall_policy).map((n) => ({ server_uuid: def.uuid, mac: n.mac, policy_uuid: n.firewall_policy! }));
}

/**
 * Writes the join table from a server's definition; call it in the transaction that writes the definition. Given the
 * definition it replaces, an edit that moved no policy (most of them) writes nothing.
 */
export async function syncNicPolicies(trx: Db, def: NicsOf, previous?: NicsOf | null): Promise<void> {
  if (previous && JSON.stringify(links(previous)) === JSON.stringify(links(def))) return;
  await trx.deleteFrom('nic_firewall_policies').where('server_uuid', '=', def.uuid).execute();
  const rows = links(def);
  if (rows.length) await trx.insertInto('nic_firewall_policies').values(rows).execute();
}

export async function dropNicPolicies(trx: Db, serverUuid: string): Promise<void> {
  await trx.deleteFrom('nic_firewall_policies').where('server_uuid', '=', serverUuid).execute();
}

/** Firewall policies, with nic_firewall_policies: which NIC of which server uses each. */
export class FwPolicyTable extends DocumentTable<FwPolicyDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'fwpolicies', 'fwpolicies', (d) => ({ name: d.name ?? '' }));
  }

  /** The policy of each NIC of a server that has one, by MAC (one join-table read and one of the policies). */
  async ofServerNics(serverUuid: string, trx: Db = this.dialect.db): Promise<Map<string, FwPolicyDoc>> {
    const rows = await trx.selectFrom('nic_firewall_policies').select(['mac', 'policy_uuid']).where('server_uuid', '=', serverUuid).execute();
    const policies = new Map((await this.getMany([...new Set(rows.map((r) => r.policy_uuid))], trx)).map((p) => [p.uuid, p.doc]));
    const out = new Map<string, FwPolicyDoc>();
    for (const r of rows) {
      const p = policies.get(r.policy_uuid);
      if (p) out.set(r.mac, p);
    }
    return out;
  }

  /** The servers one of whose NICs uses any of `policies`, each once. */
  async serversUsing(policies: string[], trx: Db = this.dialect.db): Promise<string[]> {
    if (policies.length === 0) return [];
    const rows = await trx.selectFrom('nic_firewall_policies').select('server_uuid').distinct().where('policy_uuid', 'in', policies).execute();
    return rows.map((r) => r.server_uuid);
  }

  /** Each use of `policies` by a server's NIC, with the server's owner, in the servers' order. */
  async uses(policies: string[], trx: Db = this.dialect.db): Promise<Array<{ policy_uuid: string; server_uuid: string; owner: string | null }>> {
    if (policies.length === 0) return [];
    return trx
      .selectFrom('nic_firewall_policies as n')
      .innerJoin('servers as s', 's.uuid', 'n.server_uuid')
      .select(['n.policy_uuid as policy_uuid', 's.uuid as server_uuid', 's.owner as owner'])
      .where('n.policy_uuid', 'in', policies)
      .orderBy('s.seq')
      .execute();
  }

  /** Takes `policies` off every NIC's join rows (the servers' documents are the caller's to write). */
  async detachAll(policies: string[], trx: Db): Promise<void> {
    if (policies.length === 0) return;
    await trx.deleteFrom('nic_firewall_policies').where('policy_uuid', 'in', policies).execute();
  }
}
