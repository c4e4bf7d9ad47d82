import type { AccessPolicy, Owned } from '../services.ts';
import type { Store } from '../store/index.ts';
import { ref } from '../domain/refs.ts';
import type { GrantFilter, GrantRow } from '../store/acls.ts';
import type { Actor } from './servers.ts';
import type { Db, DocTableName } from '../store/schema.ts';

/** Permissions an ACL can grant (digest §17). */
export const PERMISSIONS = ['LIST', 'EDIT', 'CLONE', 'START', 'STOP', 'OPEN_VNC', 'ATTACH', 'DELETE'] as const;

/** Which permission a server action needs from a grantee. */
export const ACTION_PERMISSION: Record<string, string> = {
  start: 'START',
  stop: 'STOP',
  shutdown: 'STOP',
  restart: 'STOP',
  open_vnc: 'OPEN_VNC',
  close_vnc: 'OPEN_VNC',
  open_console: 'OPEN_VNC',
  close_console: 'OPEN_VNC',
  clone: 'CLONE',
  // A DELETE grant lets a grantee delete the object (and, with recurse, the attached drives he may delete too).
  delete: 'DELETE',
};

/** Resource kinds whose table is named after them, so grants can be checked against the resource's owner. */
const SHAREABLE = new Set(['servers', 'drives', 'ips', 'vlans', 'snapshots', 'fwpolicies', 'remotesnapshots']);

/** What a grantee is shown of a server he does not own (see AclPolicy.serverViews). */
export interface GranteeView {
  vnc: boolean;
  drives: Set<string>;
  vlans: Set<string>;
  /** firewall policies of its NICs that he may see (the others show as null) */
  policies: Set<string>;
}

type ViewedServer = { drives: Array<{ drive: string }>; nics: Array<{ vlan: string | null; firewall_policy?: string | null }> };

type Grantee = { permissions: string[]; user: { email: null; resource_uri: string; uuid: string } };

/**
 * ACL-based access: the owner may do everything; another user may do what the owner's ACLs grant them on tags the
 * resource carries (LIST to see and list it, EDIT to change it, ATTACH to use a drive in their servers, START, STOP,
 * OPEN_VNC and CLONE for server actions). Everything else answers as if the object did not exist.
 */
export class AclPolicy implements AccessPolicy {
  constructor(private readonly store: Store) {}

  /** Grants on resources of `kind` (optionally one resource, optionally for one grantee), from ACLs of the resource's owner. */
  private async grants(kind: string, opts: GrantFilter, trx?: Db): Promise<GrantRow[]> {
    if (!SHAREABLE.has(kind)) return [];
    try {
      return await this.store.acls.grants(kind as DocTableName, opts, trx);
    } catch {
      return []; // a kind whose table another part has not created yet
    }
  }

  /** What the actor may do on a resource they do not own. */
  async permissionsOf(actor: Actor, kind: string, obj: { uuid: string; owner: string | null }, trx?: Db): Promise<Set<string>> {
    const out = new Set<string>();
    if (!obj.owner || obj.owner === actor.user) return out;
    for (const g of await this.grants(kind, { grantee: actor.user, resource: obj.uuid }, trx)) for (const p of JSON.parse(g.data).rules as string[]) out.add(p);
    return out;
  }

  /** Grantees of a resource as its owner sees them: one entry per user with the union of their permissions. */
  async granteesOf(kind: string, uuid: string): Promise<Grantee[]> {
    return (await this.granteesOfMany(kind, [uuid])).get(uuid) ?? [];
  }

  /** granteesOf for many resources in one query (lists). */
  async granteesOfMany(kind: string, uuids: string[]): Promise<Map<string, Grantee[]>> {
    const byResource = new Map<string, Map<string, Set<string>>>();
    if (uuids.length === 0) return new Map();
    for (const g of await this.grants(kind, { resources: uuids })) {
      const byUser = byResource.get(g.resource_uuid) ?? new Map<string, Set<string>>();
      const set = byUser.get(g.user_uuid) ?? new Set<string>();
      for (const p of JSON.parse(g.data).rules as string[]) set.add(p);
      byUser.set(g.user_uuid, set);
      byResource.set(g.resource_uuid, byUser);
    }
    const out = new Map<string, Grantee[]>();
    for (const [r, byUser] of byResource)
      out.set(
        r,
        [...byUser].map(([u, perms]) => ({ permissions: [...perms].sort(), user: { email: null, ...ref('user', u) } })),
      );
    return out;
  }

  /** Every permission counts only with LIST: what a grantee cannot see does not exist for him, whatever he names. */
  private async has(actor: Actor, kind: string, obj: Owned, permission: string, trx?: Db): Promise<boolean> {
    if (obj.owner === actor.user) return true;
    const perms = await this.permissionsOf(actor, kind, obj, trx);
    return perms.has('LIST') && perms.has(permission);
  }

  canSee = (a: Actor, k: string, o: Owned, trx?: Db) => this.has(a, k, o, 'LIST', trx);
  canUse = (a: Actor, k: string, o: Owned, trx?: Db) => this.has(a, k, o, 'ATTACH', trx);
  canEdit = (a: Actor, k: string, o: Owned, trx?: Db) => this.has(a, k, o, 'EDIT', trx);
  canAct = (a: Actor, k: string, o: Owned, action?: string, trx?: Db) => this.has(a, k, o, (action && ACTION_PERMISSION[action]) || 'EDIT', trx);

  /**
   * Which of `rows` the actor may see: his own, the library's when `library` (owner null), and those shared with
   * him with LIST. One grants query, and none when every row is his. What a grantee is shown of an object lists only
   * these: a uuid of anything else would tell him of an object he was never shown.
   */
  async visibleAmong(
    actor: Actor,
    kind: string,
    rows: Array<{ uuid: string; owner: string | null }>,
    opts: { library?: boolean; trx?: Db } = {},
  ): Promise<Set<string>> {
    const out = new Set<string>();
    const foreign: string[] = [];
    for (const r of rows) {
      if (r.owner === actor.user || (r.owner === null && opts.library)) out.add(r.uuid);
      else if (r.owner !== null) foreign.push(r.uuid);
    }
    if (foreign.length === 0) return out;
    for (const g of await this.grants(kind, { grantee: actor.user, resources: [...new Set(foreign)] }, opts.trx))
      if (g.user_uuid === actor.user && (JSON.parse(g.data).rules as string[]).includes('LIST')) out.add(g.resource_uuid);
    return out;
  }

  /** The owners of `uuids` in table `kind` (missing rows are left out). */
  async ownersOf(kind: string, uuids: string[], trx?: Db): Promise<Array<{ uuid: string; owner: string | null }>> {
    return this.store.ownersOf(kind as DocTableName, uuids, trx);
  }

  /**
   * The drives and VLANs of servers the actor does not own that he may see himself: of a shared server he is shown
   * only those (and never the owner's keys, which cannot be shared). Two queries for the drives, two for the VLANs.
   */
  async serverViews(actor: Actor, servers: Array<{ uuid: string; owner: string | null; doc?: unknown }>): Promise<Omit<GranteeView, 'vnc'>> {
    const defs = servers.filter((s) => s.owner !== null && s.owner !== actor.user && s.doc).map((s) => s.doc as ViewedServer);
    if (defs.length === 0) return { drives: new Set(), vlans: new Set(), policies: new Set() };
    const driveIds = defs.flatMap((s) => s.drives.map((d) => d.drive));
    const vlanIds = defs.flatMap((s) => s.nics.flatMap((n) => (n.vlan ? [n.vlan] : [])));
    const drives = await this.visibleAmong(actor, 'drives', await this.ownersOf('drives', driveIds), { library: true });
    const vlans = await this.visibleAmong(actor, 'vlans', await this.ownersOf('vlans', vlanIds));
    const policyIds = defs.flatMap((s) => s.nics.flatMap((n) => (n.firewall_policy ? [n.firewall_policy] : [])));
    const policies = await this.visibleAmong(actor, 'fwpolicies', await this.ownersOf('fwpolicies', policyIds));
    return { drives, vlans, policies };
  }

  /** Shared objects show a grantee no tags, so a grantee's tag filters match the actor's own tags only (never the owner's). */
  async listScope(actor: Actor, kind: string): Promise<{ owner?: string | null; orUuids?: string[]; tagOwner: string }> {
    const shared = (await this.grants(kind, { grantee: actor.user })).filter((g) => (JSON.parse(g.data).rules as string[]).includes('LIST'));
    return { owner: actor.user, orUuids: [...new Set(shared.map((g) => g.resource_uuid))], tagOwner: actor.user };
  }
}
