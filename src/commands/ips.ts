import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { allocateAddress, isIpv4, parsePool, type Pool } from '../domain/cidr.ts';
import { withoutTags } from '../domain/input.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { Lease } from '../store/leases.ts';
import type { IpDoc } from '../store/index.ts';
import type { Db } from '../store/schema.ts';
import { applyEditable, chainsRunning, page, seenBy, subscriptionRef } from './network-objects.ts';
import type { Actor } from './servers.ts';

/**
 * /ips/: the public addresses an account holds for as long as its subscription runs, and the DHCP addresses of its
 * running servers. Servers refer to addresses from their NICs, which is what `server` shows.
 */
export class IpCommands {
  readonly ipPool: Pool;
  readonly dhcpPool: Pool;

  constructor(private readonly svc: Services) {
    this.ipPool = parsePool(svc.config.ipPool, 'OPENSIGMA_IP_POOL');
    this.dhcpPool = parsePool(svc.config.dhcpPool, 'OPENSIGMA_DHCP_POOL');
  }

  private get store() {
    return this.svc.store;
  }

  /** Servers whose NICs have `ip` as a static address. */
  private serversUsingIp(ip: string): Promise<string[]> {
    return this.store.servers.referencing('ip', ip, ['static']);
  }

  private ipCommon(uuid: string, pool: Pool) {
    return { gateway: pool.gateway, nameservers: this.svc.config.nameservers, netmask: pool.prefix, resource_uri: ref('ips', uuid).resource_uri, uuid };
  }

  /** `holders`: the holders of many addresses for a list, already narrowed to the servers the actor may see. */
  async renderIp(actor: Actor, ip: Stored<IpDoc>, holders?: Map<string, string>) {
    const deco = await this.svc.decorations(actor, 'ips', ip.uuid);
    // Only a server the viewer may see himself is named: an address lent to a grantee does not tell of his servers.
    const server = holders ? holders.get(ip.uuid) : (await seenBy(this.svc, actor, (await this.serversUsingIp(ip.uuid)).slice(0, 1)))[0];
    const c = this.ipCommon(ip.uuid, this.ipPool);
    return {
      gateway: c.gateway,
      grantees: deco.grantees ?? [],
      meta: ip.doc.meta,
      nameservers: c.nameservers,
      netmask: c.netmask,
      owner: ownerRef(ip.owner),
      permissions: deco.permissions ?? [],
      resource_uri: c.resource_uri,
      server: server ? ref('servers', server) : null,
      subscription: subscriptionRef(ip.doc.subscription),
      tags: deco.tags ?? ip.doc.tags.map((t) => ref('tags', t)),
      uuid: ip.uuid,
    };
  }

  renderLease(l: Lease) {
    const c = this.ipCommon(l.ip, this.dhcpPool);
    return {
      gateway: c.gateway,
      grantees: [],
      meta: {},
      nameservers: c.nameservers,
      netmask: c.netmask,
      owner: ownerRef(l.owner),
      permissions: [],
      resource_uri: c.resource_uri,
      server: ref('servers', l.server_uuid),
      subscription: null,
      tags: [],
      uuid: l.ip,
    };
  }

  /** A bought address the account still holds: its subscription runs, or a server still uses it. */
  private async held(ip: Stored<IpDoc>): Promise<boolean> {
    return (await chainsRunning(this.store, [ip], new Date())).has(ip.uuid) || (await this.serversUsingIp(ip.uuid)).length > 0;
  }

  /** An address the actor may see, or undefined. */
  private async visible(actor: Actor, ip: string): Promise<Stored<IpDoc> | undefined> {
    const owned = isIpv4(ip) ? await this.store.ips.get(ip) : undefined;
    return owned && (await this.svc.access.canSee(actor, 'ips', owned)) && (await this.held(owned)) ? owned : undefined;
  }

  /** Any address under /ips/ rendered for the actor, or null when they may not see it. Used by notifications too. */
  async renderIpById(actor: Actor, ip: string) {
    const owned = await this.visible(actor, ip);
    if (owned) return this.renderIp(actor, owned);
    const lease = (await this.store.leases.active({ ip }))[0];
    return lease && lease.owner === actor.user ? this.renderLease(lease) : null;
  }

  /**
   * The actor's addresses: bought ones, then the DHCP addresses of their running servers. DHCP addresses have no
   * name, meta or tags, so any filter on those leaves them out.
   */
  async listIps(actor: Actor, q: ListQuery, full: boolean) {
    const { items: all } = await this.store.ips.list({ ...q, limit: 0, offset: 0, ...(await this.svc.access.listScope(actor, 'ips')) });
    const out: unknown[] = [];
    const holders = await this.store.servers.staticHolders();
    const running = await chainsRunning(this.store, all, new Date());
    const items = all.filter((ip) => running.has(ip.uuid) || holders.has(ip.uuid));
    // A list names only the holders the actor may see, as renderIp does.
    const seen = new Set(await seenBy(this.svc, actor, [...new Set(items.flatMap((ip) => holders.get(ip.uuid) ?? []))]));
    for (const [ip, holder] of holders) if (!seen.has(holder)) holders.delete(ip);
    for (const ip of items) out.push(full ? await this.renderIp(actor, ip, holders) : this.shortIp(ip.owner, ip.uuid, holders.get(ip.uuid) ?? null));
    const onlyUuid = q.conditions.every((c) => c.column === 'uuid' && c.op === 'exact');
    if (onlyUuid && !q.tags.length && !q.tagNames.length) {
      const wanted = q.conditions.map((c) => new Set(c.values));
      for (const l of await this.store.leases.active({ owner: actor.user }))
        if (wanted.every((w) => w.has(l.ip))) out.push(full ? this.renderLease(l) : this.shortIp(l.owner, l.ip, l.server_uuid));
    }
    return { total: out.length, items: page(out, q) };
  }

  private shortIp(owner: string | null, ip: string, server: string | null) {
    return { owner: ownerRef(owner), resource_uri: ref('ips', ip).resource_uri, server: server ? ref('servers', server) : null, uuid: ip };
  }

  async getIp(actor: Actor, ip: string) {
    const out = isIpv4(ip) ? await this.renderIpById(actor, ip) : null;
    if (!out) throw errors.notFound('IP');
    return out;
  }

  /** meta and tags are what may change; everything else is read-only and ignored. */
  async updateIp(actor: Actor, ip: string, body: Record<string, unknown>) {
    const cur = await this.visible(actor, ip);
    if (!cur) {
      if (isIpv4(ip) && (await this.store.leases.active({ ip, owner: actor.user })).length) throw errors.dynamicIp(ip);
      throw errors.notFound('IP');
    }
    if (!(await this.svc.access.canEdit(actor, 'ips', cur))) throw errors.permission('You may not edit this IP');
    const doc = structuredClone(cur.doc);
    await applyEditable(this.svc, actor, doc, cur.owner === actor.user ? body : withoutTags(body));
    await this.store.transaction(async (trx) => {
      await this.store.ips.update(doc, {}, trx);
      await this.store.ips.setTags(doc.uuid, doc.tags, trx);
    });
    this.svc.publish('ips', ip, cur.owner, 'updated', actor);
    return this.renderIp(actor, (await this.store.ips.get(ip))!);
  }

  /** The lowest free address of the pool. A unique key makes a concurrent taker lose cleanly and try the next. */
  async allocate(owner: string, trx: Db): Promise<string> {
    const taken = await this.store.ips.uuids(trx);
    const ip = await allocateAddress(this.ipPool, taken, (uuid) =>
      this.store.ips.insertIfFree(owner, { uuid, meta: {}, tags: [], subscription: null }, '', trx),
    );
    if (ip === null) throw errors.poolExhausted('public IP addresses', 'OPENSIGMA_IP_POOL');
    return ip;
  }
}
