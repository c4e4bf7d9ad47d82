import type { Decorations, Services } from '../services.ts';
import { errors } from '../errors.ts';
import { applyServerInput, mergeAttachments, type ServerDef } from '../domain/server-definition.ts';
import { randomUuid } from '../domain/random.ts';
import { newMac, randomPassword } from '../domain/ids.ts';
import { isUuid, ownerRef, ref } from '../domain/refs.ts';
import { readBool, readString, withoutTags } from '../domain/input.ts';
import type { ListQuery, PageKey, Stored } from '../store/documents.ts';
import type { DriveDoc } from '../domain/drive-definition.ts';
import { placeServer } from '../compute/scheduler.ts';
import { OPS_CHANNEL } from '../store/operations.ts';
import type { ServerRuntime } from '../domain/server-runtime.ts';
import type { Actor } from '../domain/actor.ts';
import { ON_HOST, allows, refusalMessage, showsRuntime, type ServerEvent } from '../domain/server-lifecycle.ts';
import { cloneDriveRecord, refreshDriveStatus } from './drives.ts';
import { cloneName } from '../domain/clone-naming.ts';
import { dropNicPolicies, syncNicPolicies } from './firewall.ts';
import type { GranteeView } from './access.ts';
import type { Db } from '../store/schema.ts';

export type { Actor };

/** A drive deleted because the server holding it went (letGo), with its owner for the event. */
type Released = { uuid: string; owner: string | null };

const IO_ZERO_DRIVE = {
  bytes_read: 0,
  bytes_written: 0,
  count_flush: 0,
  count_read: 0,
  count_written: 0,
  total_time_ns_flush: 0,
  total_time_ns_read: 0,
  total_time_ns_write: 0,
};
const IO_ZERO_NIC = { bytes_recv: 0, bytes_sent: 0, packets_recv: 0, packets_sent: 0 };
/** Local/foreign traffic counters of the NIC runtime (in the schema and in CloudSigma's answers since 2021). */
const TRAFFIC_ZERO = { rx_foreign: 0, rx_local: 0, tx_foreign: 0, tx_local: 0 };

export function renderRuntime(rt: ServerRuntime | null) {
  if (!rt) return null;
  return {
    active_since: rt.active_since,
    nics: rt.nics.map((n) => ({
      interface_type: n.interface_type,
      io: { ...IO_ZERO_NIC, ...(rt.io.nics[n.mac] ?? {}) },
      ip_v4: n.ip_v4 ? ref('ips', n.ip_v4) : null,
      ip_v6: null,
      mac: n.mac,
      ...TRAFFIC_ZERO,
    })),
  };
}

export { showsRuntime };

/** The full wire object of a server. */
export function renderServer(s: Stored<ServerDef>, extra: Decorations = {}) {
  const d = extra.view ? grantedPart(s.doc, extra.view) : s.doc;
  const rt = showsRuntime(s.status) && s.row.runtime ? (JSON.parse(String(s.row.runtime)) as ServerRuntime) : null;
  if (rt && extra.view) rt.nics = rt.nics.filter((n) => d.nics.some((x) => x.mac === n.mac));
  const runtime = renderRuntime(rt);
  return {
    allocation_pool: d.allocation_pool,
    auto_start: d.auto_start,
    context: d.context,
    cpu: d.cpu,
    cpu_model: d.cpu_model,
    cpu_type: d.cpu_type,
    cpus_instead_of_cores: d.cpus_instead_of_cores,
    drives: d.drives.map((a) => ({
      boot_order: a.boot_order,
      dev_channel: a.dev_channel,
      device: a.device,
      drive: ref('drives', a.drive),
      runtime: rt ? { io: { ...IO_ZERO_DRIVE, ...(rt.io.drives[a.drive] ?? {}) } } : null,
    })),
    enable_numa: d.enable_numa,
    epcs: d.epcs,
    gpus: d.gpus.map((g) => ({ gpu: null, model: g.model })),
    grantees: extra.grantees ?? [],
    hv_relaxed: d.hv_relaxed,
    hv_tsc: d.hv_tsc,
    hypervisor: d.hypervisor,
    is_grey: d.is_grey,
    jobs: extra.jobs ?? [],
    mem: d.mem,
    meta: d.meta,
    name: d.name,
    nics: d.nics.map((n) => {
      const nrt = runtime?.nics.find((x) => x.mac === n.mac);
      return {
        boot_order: n.boot_order,
        firewall_policy: n.firewall_policy ? ref('fwpolicies', n.firewall_policy) : null,
        ip_v4_conf: n.ip_v4_conf ? { conf: n.ip_v4_conf.conf, ip: n.ip_v4_conf.ip ? ref('ips', n.ip_v4_conf.ip) : null } : null,
        ip_v6_conf: n.ip_v6_conf ? { conf: n.ip_v6_conf.conf, ip: n.ip_v6_conf.ip ? ref('ips', n.ip_v6_conf.ip) : null } : null,
        mac: n.mac,
        model: n.model,
        runtime: nrt ? { interface_type: nrt.interface_type, io: nrt.io, ip_v4: nrt.ip_v4, ip_v6: nrt.ip_v6, ...TRAFFIC_ZERO } : null,
        vlan: n.vlan ? ref('vlans', n.vlan) : null,
      };
    }),
    owner: ownerRef(s.owner),
    permissions: extra.permissions ?? [],
    pubkeys: d.pubkeys.map((p) => ref('pubkeys', p)),
    requirements: d.requirements,
    resource_uri: ref('servers', d.uuid).resource_uri,
    runtime,
    smp: d.smp,
    status: s.status,
    tags: extra.tags ?? d.tags.map((t) => ref('tags', t)),
    uuid: d.uuid,
    // null, not absent: clients read the key; a grantee without OPEN_VNC may not learn the console's password.
    vnc_password: extra.view && !extra.view.vnc ? null : d.vnc_password,
  };
}

/**
 * The part of a server a grantee is shown: drives and VLAN NICs he may see himself, none of the owner's keys. An
 * edit by him keeps the rest as it is (granteeEdit).
 */
function grantedPart(d: ServerDef, view: GranteeView): ServerDef {
  return {
    ...d,
    drives: d.drives.filter((a) => view.drives.has(a.drive)),
    // A policy he may not see shows as none: its uuid is the owner's.
    nics: d.nics
      .filter((n) => !n.vlan || view.vlans.has(n.vlan))
      .map((n) => (n.firewall_policy && !view.policies.has(n.firewall_policy) ? { ...n, firewall_policy: null } : n)),
    pubkeys: [],
  };
}

/** `extra`: a grantee's view (Decorations.view), so that the runtime shows only the NICs he is shown. */
export function renderServerShort(s: Stored<ServerDef>, extra: Decorations = {}) {
  const full = renderServer(s, extra);
  return { name: full.name, owner: full.owner, resource_uri: full.resource_uri, runtime: full.runtime, status: full.status, uuid: full.uuid };
}

/**
 * Server commands: the one place where server requests turn into state changes, host operations and events.
 */
export class ServerCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  /** The server if the actor may see it; anyone else's answers exactly like a missing one. */
  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<ServerDef>> {
    const s = await this.store.servers.get(uuid, trx);
    // An owner sees his own: only others' objects ask the access policy (ACLs).
    if (!s || (s.owner !== actor.user && !(await this.svc.access.canSee(actor, 'servers', s, trx)))) throw errors.notFound('Server');
    return s;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.servers.list({ ...q, ...(await this.svc.access.listScope(actor, 'servers')) });
  }

  /** list(), leaving out the documents of the objects `reusable` accepts (see DocumentTable.listReusing). */
  async listReusing(actor: Actor, q: ListQuery, reusable: ((k: PageKey) => boolean) | null) {
    return this.store.servers.listReusing({ ...q, ...(await this.svc.access.listScope(actor, 'servers')) }, reusable);
  }

  async render(actor: Actor, s: Stored<ServerDef>) {
    return (await this.renderMany(actor, [s]))[0]!;
  }

  /** Full wire objects of many servers, decorated in a constant number of queries. */
  async renderMany(actor: Actor, list: Stored<ServerDef>[]) {
    const deco = await this.svc.decorationsMany(actor, 'servers', list);
    return list.map((s) => renderServer(s, deco.get(s.uuid)));
  }

  /**
   * Checks that everything a definition newly refers to exists and may be used by the actor; what it already had
   * stays valid (an edit never fails over a drive, key or tag the server had). `owner` is the server's owner: a
   * grantee may add only the owner's drives, addresses and VLANs that he holds ATTACH on (digest §17: what a shared
   * server refers to is its owner's), never his own.
   */
  private async checkReferences(actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Db, owner = actor.user): Promise<void> {
    const before = new Set(previous?.drives.map((d) => d.drive) ?? []);
    const added = def.drives.filter((a) => !before.has(a.drive));
    const drives = await this.store.drives.getMany(
      added.map((d) => d.drive),
      trx,
    );
    const byId = new Map(drives.map((d) => [d.uuid, d]));
    for (const a of added) {
      const d = byId.get(a.drive);
      const library = d && d.owner === null;
      if (!d || (!library && !(await this.svc.access.canUse(actor, 'drives', d, trx)))) throw errors.invalid('drives.drive', `Drive ${a.drive} does not exist`);
      if (library && d.doc.media !== 'cdrom')
        throw errors.permission(`Library drive ${a.drive} is a disk: clone it into your account before attaching it`, 'drives.drive');
      if (!library && owner !== actor.user && d.owner !== owner)
        throw errors.permission(`Drive ${a.drive} is not the server owner's: a shared server takes only its owner's drives`, 'drives.drive');
      // A drive still being created may be attached (its bytes are there before anyone can start the server);
      // one whose bytes are being copied or uploaded may not.
      if (['cloning_dst', 'uploading'].includes(d.status))
        throw errors.permission(`Drive ${a.drive} is ${d.status} and cannot be attached yet`, 'drives.drive');
      if (d.doc.media !== 'cdrom' && !d.doc.allow_multimount && !library) {
        if (await this.store.drives.attachedElsewhere(a.drive, def.uuid, trx))
          throw errors.permission(`Drive ${a.drive} is already mounted on another server and does not allow multimount`, 'drives.drive');
      }
    }
    // Tags the server already has stay valid (a grantee's edit keeps the owner's); new ones must be the actor's.
    const addedTags = def.tags.filter((t) => !previous?.tags.includes(t));
    const tags = await this.store.tags.getMany(addedTags, trx);
    for (const t of addedTags) {
      const tag = tags.find((x) => x.uuid === t);
      if (!tag || tag.owner !== actor.user) throw errors.invalid('tags', `Tag ${t} does not exist`);
    }
    const addedKeys = def.pubkeys.filter((k) => !previous?.pubkeys.includes(k));
    const keys = await this.store.keypairs.getMany(addedKeys, trx);
    for (const k of addedKeys) {
      const kp = keys.find((x) => x.uuid === k);
      if (!kp || kp.owner !== actor.user) throw errors.invalid('pubkeys', `Public key ${k} does not exist`);
    }
    for (const check of this.svc.serverReferenceChecks) await check(actor, def, previous, trx);
    if (owner !== actor.user) await this.onlyTheOwnersNetworks(def, previous, owner, trx);
  }

  /** A grantee may give a shared server only the owner's addresses and VLANs (the checks above found them usable). */
  private async onlyTheOwnersNetworks(def: ServerDef, previous: ServerDef | null, owner: string, trx: Db): Promise<void> {
    const had = new Set(previous?.nics.flatMap((n) => [n.vlan, n.ip_v4_conf?.ip, n.ip_v6_conf?.ip]) ?? []);
    const ips = def.nics.flatMap((n) => [n.ip_v4_conf?.ip, n.ip_v6_conf?.ip]).filter((ip): ip is string => !!ip && !had.has(ip));
    const vlans = def.nics.flatMap((n) => (n.vlan && !had.has(n.vlan) ? [n.vlan] : []));
    for (const r of await this.svc.acl.ownersOf('ips', ips, trx))
      if (r.owner !== owner)
        throw errors.permission(`IP ${r.uuid} is not the server owner's: a shared server takes only its owner's addresses`, 'nics.ip_v4_conf.ip');
    for (const r of await this.svc.acl.ownersOf('vlans', vlans, trx))
      if (r.owner !== owner) throw errors.permission(`VLAN ${r.uuid} is not the server owner's: a shared server takes only its owner's VLANs`, 'nics.vlan');
  }

  /**
   * Writes the attachment table and the status of every drive whose mounts changed; answers the drives that went
   * because this server was the last to hold them after a recursive delete asked for them (letGo).
   */
  private async syncAttachments(actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Db): Promise<Released[]> {
    const now = def.drives.map((d) => d.drive);
    const was = previous?.drives.map((d) => d.drive) ?? [];
    await this.store.servers.writeAttachments(def.uuid, now, trx);
    for (const d of now) await refreshDriveStatus(this.store, d, trx);
    return this.letGo(
      actor,
      was.filter((d) => !now.includes(d)),
      () => false,
      trx,
    );
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<ServerDef>[]> {
    const defs = bodies.map((b) => applyServerInput(null, b, this.svc.capabilities, { defaultCpuType: this.svc.config.defaultCpuType }));
    const created = await this.store.transaction(async (trx) => {
      const out: Stored<ServerDef>[] = [];
      for (const def of defs) {
        await this.checkReferences(actor, def, null, trx);
        await this.store.servers.insert(actor.user, def, 'stopped', trx);
        await this.store.servers.setTags(def.uuid, def.tags, trx);
        await this.syncAttachments(actor, def, null, trx);
        await syncNicPolicies(trx, def);
        out.push((await this.store.servers.get(def.uuid, trx))!);
      }
      return out;
    });
    for (const s of created) this.svc.publish('servers', s.uuid, actor.user, 'created');
    return created;
  }

  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<ServerDef>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const s = await this.load(actor, uuid);
      if (s.owner !== actor.user && !(await this.svc.access.canEdit(actor, 'servers', s))) throw errors.permission('You may not edit this server');
      const running = s.status !== 'stopped';
      const def =
        s.owner === actor.user
          ? applyServerInput(s.doc, body, this.svc.capabilities, { running, defaultCpuType: this.svc.config.defaultCpuType })
          : await this.granteeEdit(actor, s, body, running);
      const ok = await this.store.transaction(async (trx) => {
        await this.checkReferences(actor, def, s.doc, trx, s.owner ?? actor.user);
        if (!(await this.store.servers.update(def, { expectedVersion: s.version }, trx))) return null;
        await this.store.servers.setTags(def.uuid, def.tags, trx);
        await syncNicPolicies(trx, def, s.doc);
        return running ? [] : await this.syncAttachments(actor, def, s.doc, trx);
      });
      if (ok) {
        this.svc.publish('servers', uuid, s.owner, 'updated', actor);
        for (const d of ok) this.svc.publish('drives', d.uuid, d.owner, 'deleted', actor);
        await this.svc.afterDriveDelete(ok.map((d) => d.uuid));
        return (await this.store.servers.get(uuid))!;
      }
      // Someone else wrote in between (a status change, another edit): apply the request to the new version.
    }
    throw errors.concurrency();
  }

  /**
   * A grantee's edit applies to the server as he is shown it (renderServer's view), and what he was not shown is
   * kept as it is: drives and VLAN NICs he cannot see, the owner's keys, the owner's tags (which may be what shares
   * the server) and, without OPEN_VNC, the vnc_password. Setting a password or keys he may not set is refused.
   */
  private async granteeEdit(actor: Actor, s: Stored<ServerDef>, body: Record<string, unknown>, running: boolean): Promise<ServerDef> {
    const view = (await this.svc.decorationsMany(actor, 'servers', [s])).get(s.uuid)?.view;
    if (!view) throw errors.permission('You may not edit this server');
    const input = withoutTags(body);
    if (!view.vnc) {
      if (input.vnc_password !== undefined && input.vnc_password !== null)
        throw errors.permission('Setting the vnc_password of a shared server needs OPEN_VNC', 'vnc_password');
      delete input.vnc_password;
    }
    if (Array.isArray(input.pubkeys) ? input.pubkeys.length > 0 : input.pubkeys !== undefined && input.pubkeys !== null)
      throw errors.permission("SSH keys cannot be given to a shared server: only its owner's keys may be on it", 'pubkeys');
    delete input.pubkeys;
    const shown = grantedPart(s.doc, view);
    const def = applyServerInput(shown, input, this.svc.capabilities, { running });
    def.pubkeys = s.doc.pubkeys;
    const hiddenDrives = s.doc.drives.filter((a) => !view.drives.has(a.drive));
    def.drives = mergeAttachments(def.drives, hiddenDrives);
    // A policy he was shown as none stays the owner's, unless he set one himself.
    for (const n of def.nics) {
      const was = s.doc.nics.find((x) => x.mac === n.mac)?.firewall_policy;
      if (was && !view.policies.has(was) && !n.firewall_policy) n.firewall_policy = was;
    }
    // A NIC he was not shown goes back where it was, so the guest's interfaces keep their order.
    s.doc.nics.forEach((n, i) => {
      if (n.vlan && !view.vlans.has(n.vlan)) def.nics.splice(Math.min(i, def.nics.length), 0, n);
    });
    return def;
  }

  async delete(actor: Actor, uuid: string, recurse: string | undefined): Promise<void> {
    if (recurse !== undefined && !['all_drives', 'disks', 'cdroms'].includes(recurse))
      throw errors.invalid('recurse', `recurse must be all_drives, disks or cdroms, not ${recurse}`);
    const s = await this.load(actor, uuid);
    if (s.owner !== actor.user && !(await this.svc.access.canAct(actor, 'servers', s, 'delete'))) throw errors.permission('You may not delete this server');
    if (!allows('delete', s.status)) this.refuse('delete', s.status);
    let deletedDrives: Released[] = [];
    await this.store.transaction(async (trx) => {
      const fresh = await this.store.servers.get(uuid, trx);
      if (!fresh || !allows('delete', fresh.status)) throw errors.concurrency();
      await this.store.servers.delete(uuid, trx);
      await this.store.servers.dropAttachments(uuid, trx);
      await dropNicPolicies(trx, uuid);
      const wanted = (d: Stored<DriveDoc>) =>
        recurse === 'all_drives' || (recurse === 'disks' && d.doc.media === 'disk') || (recurse === 'cdroms' && d.doc.media === 'cdrom');
      deletedDrives = await this.letGo(
        actor,
        fresh.doc.drives.map((d) => d.drive),
        wanted,
        trx,
      );
    });
    this.svc.publish('servers', uuid, s.owner, 'deleted', actor);
    for (const d of deletedDrives) this.svc.publish('drives', d.uuid, d.owner, 'deleted', actor);
    await this.svc.afterDriveDelete(deletedDrives.map((d) => d.uuid));
  }

  /**
   * Drives a server no longer holds (it was deleted, or an edit detached them). Those `wanted` by a recursive delete
   * that the actor may delete (his own, or granted DELETE) go, unless another server still uses them: then they are
   * marked, and go with the last server that lets go of them. A drive marked before goes as soon as none holds it.
   */
  private async letGo(actor: Actor, drives: string[], wanted: (d: Stored<DriveDoc>) => boolean, trx: Db): Promise<Released[]> {
    const deleted: Released[] = [];
    for (const d of await this.store.drives.getMany(drives, trx)) {
      const asked = wanted(d) && d.owner !== null && (d.owner === actor.user || (await this.svc.access.canAct(actor, 'drives', d, 'delete', trx)));
      const stillUsed = await this.store.drives.isAttached(d.uuid, trx);
      if ((asked || d.doc.delete_with_last_server) && !stillUsed) {
        await this.svc.deleteDrive(d.uuid, trx);
        deleted.push({ uuid: d.uuid, owner: d.owner });
        continue;
      }
      if (asked && !d.doc.delete_with_last_server) await this.store.drives.update({ ...d.doc, delete_with_last_server: true }, {}, trx);
      await refreshDriveStatus(this.store, d.uuid, trx);
    }
    return deleted;
  }

  /** Wakes the agent of `host` (only that one: every other agent would look for work in vain). */
  private wake(host: string): void {
    this.svc.compute?.poke();
    void this.store.dialect.notify(OPS_CHANNEL, host).catch(() => {});
  }

  private refuse(event: ServerEvent, status: string): never {
    throw errors.wrongState(refusalMessage(event, status));
  }

  async action(actor: Actor, uuid: string, action: string, query: Record<string, string | undefined>, body: Record<string, unknown>) {
    const s = await this.load(actor, uuid);
    if (s.owner !== actor.user && !(await this.svc.access.canAct(actor, 'servers', s, action))) throw errors.permission('You may not operate this server');
    // Keys in alphabetical order, as CloudSigma serialises them (console_url comes before result).
    const reply = (extra: Record<string, unknown> = {}) =>
      Object.fromEntries(Object.entries({ action, result: 'success', uuid, ...extra }).sort(([a], [b]) => (a < b ? -1 : 1)));
    let host = '';
    switch (action) {
      case 'start': {
        const avoid = (query.avoid ?? '')
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (!allows('start', cur.status)) this.refuse('start', cur.status);
          const notReady = (
            await this.store.drives.getMany(
              cur.doc.drives.map((d) => d.drive),
              trx,
            )
          ).find((d) => ['creating', 'cloning_dst', 'uploading', 'resizing'].includes(d.status));
          if (notReady) throw errors.permission(`Drive ${notReady.uuid} is ${notReady.status}; start the server when it is ready`, 'drives');
          // Placed on the figures read in this transaction, and written only over their version: a concurrent CPU or
          // memory edit either lands first (and is placed) or finds the server starting.
          const place = await placeServer(trx, this.store.hosts, { cpu: cur.doc.cpu, mem: cur.doc.mem }, avoid);
          if (!place) throw errors.capacity();
          const op = await this.store.servers.applyEvent(
            uuid,
            'start',
            { seen: cur.status, version: cur.version, columns: { host: place.host }, host: place.host, payload: { avoid } },
            trx,
          );
          if (op === null) {
            // Another request moved it first: refuse by what it is now, as CloudSigma does; an edit racing us is a retry.
            const now = (await this.store.servers.get(uuid, trx))?.status ?? cur.status;
            if (allows('start', now)) throw errors.concurrency();
            this.refuse('start', now);
          }
          host = place.host;
        });
        break;
      }
      case 'stop':
      case 'shutdown': {
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (!allows(action, cur.status) || !cur.row.host) this.refuse(action, cur.status);
          if (cur.status !== 'running' && (await this.stopUnderway(uuid, trx))) this.refuse(action, cur.status);
          // The version check makes two concurrent stops of one server conflict on every database.
          const op = await this.store.servers.applyEvent(uuid, action, { seen: cur.status, version: cur.version, host: String(cur.row.host) }, trx);
          if (op === null) this.refuse(action, cur.status);
          host = String(cur.row.host);
        });
        break;
      }
      case 'restart': {
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (!allows('restart', cur.status)) this.refuse('restart', cur.status);
          host = String(cur.row.host);
          if ((await this.store.servers.applyEvent(uuid, 'restart', { seen: cur.status, host }, trx)) === null) this.refuse('restart', cur.status);
        });
        break;
      }
      case 'open_console':
      case 'open_vnc': {
        if (!allows(action, s.status)) this.refuse(action, s.status);
        host = String(s.row.host);
        const id = await this.store.transaction((trx) => this.store.servers.applyEvent(uuid, action, { host }, trx));
        if (!id) this.refuse(action, (await this.store.servers.get(uuid))?.status ?? s.status);
        this.wake(host);
        const result = await this.awaitOperation(id);
        const hostRow = await this.store.hosts.get(host);
        const url = `${action === 'open_vnc' ? 'vnc' : 'csconsole'}://${hostRow?.public_host ?? this.svc.config.publicHost}:${Number(result.port)}`;
        return action === 'open_vnc' ? reply({ vnc_url: url }) : reply({ console_url: url });
      }
      case 'close_console':
      case 'close_vnc': {
        // Closing is allowed in any state: it tears down what a stopped server may have left open.
        if (s.row.host) {
          host = String(s.row.host);
          const id = await this.store.transaction((trx) => this.store.operations.enqueue(trx, { server_uuid: uuid, host, kind: action }));
          this.wake(host);
          await this.awaitOperation(id).catch(() => {});
        }
        break;
      }
      case 'clone':
        return this.clone(actor, s, query, body);
      default:
        throw errors.invalid(
          'do',
          `Unknown action ${action}; available: start, stop, shutdown, restart, open_console, close_console, open_vnc, close_vnc, clone`,
        );
    }
    this.wake(host);
    this.svc.publish('servers', uuid, s.owner, action, actor);
    return reply();
  }

  /** Whether a stop is already on its way; one unfinished for longer than the ACPI timeout counts as hung. */
  private async stopUnderway(uuid: string, trx: Db): Promise<boolean> {
    const since = new Date(Date.now() - this.svc.config.acpiTimeoutS * 1000).toISOString();
    return this.store.operations.unfinishedSince(uuid, 'stop', since, trx);
  }

  /** Waits for a host operation to finish, for actions whose reply needs its result (a console port). */
  private async awaitOperation(id: number, timeoutMs = 15000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 2; Date.now() < deadline; delay = Math.min(delay * 2, 100)) {
      const op = await this.store.operations.get(id);
      if (op?.state === 'done') return op.result ?? {};
      if (op?.state === 'failed') throw errors.permission(`The host could not do it: ${op.error}`);
      await new Promise((r) => setTimeout(r, delay));
    }
    throw errors.concurrency('The host did not answer in time; retry later');
  }

  private async clone(actor: Actor, s: Stored<ServerDef>, query: Record<string, string | undefined>, body: Record<string, unknown>) {
    if (!allows('clone', s.status)) this.refuse('clone', s.status);
    const given = (k: string) => body[k] !== undefined && body[k] !== null;
    const name = given('name') ? readString(body.name, 'name', { nonEmpty: true, max: 1024 }) : await cloneName(this.svc, actor.user, s.doc.name, 'servers');
    const randomVnc = given('random_vnc_password') && readBool(body.random_vnc_password, 'random_vnc_password');
    // avoid is a hint: what is not a server or drive id is ignored, never an error.
    const avoid = (query.avoid ?? '')
      .split(',')
      .map((x) => x.trim().toLowerCase())
      .filter(isUuid);
    const newUuid = randomUuid();
    const job = await this.svc.jobs.start({
      owner: actor.user,
      operation: 'server_clone',
      resources: [
        ['servers', s.uuid],
        ['servers', newUuid],
      ],
    });
    const clonedDrives: string[] = [];
    const created = await this.store
      .transaction(async (trx) => {
        const def: ServerDef = structuredClone(s.doc);
        def.uuid = newUuid;
        def.name = name;
        if (randomVnc) def.vnc_password = randomPassword(8);
        // Static addresses belong to the source: the clone gets DHCP.
        def.nics = def.nics.map((n) => ({
          ...n,
          mac: newMac(),
          ip_v4_conf: n.ip_v4_conf && n.ip_v4_conf.conf === 'static' ? { conf: 'dhcp', ip: null } : n.ip_v4_conf,
          ip_v6_conf: n.ip_v6_conf && n.ip_v6_conf.conf === 'static' ? { conf: 'dhcp', ip: null } : n.ip_v6_conf,
        }));
        const drives = await this.store.drives.getMany(
          def.drives.map((d) => d.drive),
          trx,
        );
        if (s.owner !== actor.user) await this.leaveOutWhatTheNewOwnerMayNotUse(actor, s, def, drives, trx);
        for (const a of def.drives) {
          const d = drives.find((x) => x.uuid === a.drive);
          if (d && d.doc.media === 'disk') {
            a.drive = await cloneDriveRecord(this.svc, actor, d, {}, trx, avoid);
            clonedDrives.push(a.drive);
          }
        }
        await this.store.servers.insert(actor.user, def, 'stopped', trx);
        await this.store.servers.setTags(def.uuid, def.tags, trx);
        await this.store.servers.writeAttachments(
          def.uuid,
          def.drives.map((d) => d.drive),
          trx,
        );
        await syncNicPolicies(trx, def);
        return (await this.store.servers.get(def.uuid, trx))!;
      })
      .catch(async (e) => {
        await this.svc.jobs.finish(job, 'failed');
        throw e;
      });
    // The drive_clone jobs end as their copies do; the server_clone job with the last of them.
    for (const d of clonedDrives) for (const j of await this.svc.jobs.runningOn(d, { finishedToo: true })) await this.svc.jobs.adopt(job, j.uuid);
    await this.svc.jobs.settleParent(job);
    this.svc.publish('servers', created.uuid, actor.user, 'created');
    await this.svc.afterClone(created);
    return this.render(actor, (await this.store.servers.get(created.uuid))!);
  }

  /**
   * A grantee's clone is his own server: it keeps none of the owner's tags (which would list it among the owner's
   * resources and put it under the owner's ACLs), SSH keys, private VLANs, or CD-ROMs and firewall policies he may
   * not attach himself; a disk he may not clone refuses the whole clone (a server without its disk would be a
   * surprise, not a copy).
   */
  private async leaveOutWhatTheNewOwnerMayNotUse(actor: Actor, source: Stored<ServerDef>, def: ServerDef, drives: Stored<DriveDoc>[], trx: Db): Promise<void> {
    const own = (rows: Array<{ uuid: string; owner: string | null }>) => new Set(rows.filter((r) => r.owner === actor.user).map((r) => r.uuid));
    const tags = own(await this.store.tags.getMany(def.tags, trx));
    def.tags = def.tags.filter((t) => tags.has(t));
    const keys = own(await this.store.keypairs.getMany(def.pubkeys, trx));
    def.pubkeys = def.pubkeys.filter((k) => keys.has(k));
    const vlans = own(
      await this.store.vlans.getMany(
        def.nics.flatMap((n) => (n.vlan ? [n.vlan] : [])),
        trx,
      ),
    );
    def.nics = def.nics.filter((n) => !n.vlan || vlans.has(n.vlan));
    const policies = new Set<string>();
    for (const p of await this.store.fwpolicies.getMany(
      def.nics.flatMap((n) => (n.firewall_policy ? [n.firewall_policy] : [])),
      trx,
    ))
      if (p.owner === actor.user || (await this.svc.access.canUse(actor, 'fwpolicies', p, trx))) policies.add(p.uuid);
    for (const n of def.nics) if (n.firewall_policy && !policies.has(n.firewall_policy)) n.firewall_policy = null;
    const usable = new Set<string>();
    for (const d of drives) {
      const his = d.owner === null || d.owner === actor.user;
      // A disk is copied into the clone: its bytes go out only to someone who could clone the disk itself.
      if (d.doc.media === 'disk' && !his && !(await this.svc.access.canAct(actor, 'drives', d, 'clone', trx)))
        throw errors.permission(`Drive ${d.uuid} of this server is not shared with you for cloning (it needs CLONE): the server cannot be cloned`, 'drives');
      if (d.doc.media !== 'cdrom' || his || (await this.svc.access.canUse(actor, 'drives', d, trx))) usable.add(d.uuid);
    }
    def.drives = def.drives.filter((a) => usable.has(a.drive));
    // The owner's console password is not his to learn from the copy unless he may open the console himself.
    const perms = await this.svc.acl.permissionsOf(actor, 'servers', source, trx);
    if (!perms.has('OPEN_VNC')) def.vnc_password = randomPassword(8);
  }

  async runtime(actor: Actor, uuid: string) {
    const s = await this.load(actor, uuid);
    return s.owner === actor.user ? renderServer(s).runtime : (await this.render(actor, s)).runtime;
  }

  /** Servers that share a physical host: only running ones. */
  async availabilityGroups(actor: Actor): Promise<string[][]> {
    const rows = await this.store.servers.onHostsOf(actor.user);
    const groups = new Map<string, string[]>();
    for (const r of rows) groups.set(r.host, [...(groups.get(r.host) ?? []), r.uuid]);
    return [...groups.values()];
  }

  async availabilityGroup(actor: Actor, uuid: string): Promise<string[]> {
    const s = await this.load(actor, uuid);
    if (!s.row.host || !ON_HOST.includes(s.status)) return [];
    return (await this.availabilityGroups(actor)).find((g) => g.includes(uuid)) ?? [];
  }
}
