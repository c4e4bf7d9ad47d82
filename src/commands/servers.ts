import type { Kysely } from 'kysely';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { applyServerInput, type ServerDef } from '../domain/server-definition.ts';
import crypto from 'node:crypto';
import { newMac, randomPassword } from '../domain/ids.ts';
import { isUuid, ownerRef, ref } from '../domain/refs.ts';
import { readBool, readString, withoutTags } from '../domain/input.ts';
import type { ListQuery, PageKey, Stored } from '../store/documents.ts';
import type { DriveDoc } from '../domain/drive-definition.ts';
import { placeServer } from '../compute/scheduler.ts';
import { OPS_CHANNEL, type ServerRuntime } from '../compute/node.ts';
import type { OperationKind } from '../store/operations.ts';
import { cloneDriveRecord, refreshDriveStatus } from './drives.ts';
import { cloneName } from '../domain/clone-naming.ts';

export interface Actor {
  user: string;
}

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

/** CloudSigma's internal state names, which its error messages use. */
const INTERNAL_STATE: Record<string, string> = {
  running: 'started',
  stopped: 'stopped',
  starting: 'starting',
  stopping: 'stopping',
  paused: 'paused',
  unavailable: 'unavailable',
};

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

/** The full wire object of a server. */
/** A server shows its runtime while running or stopping; otherwise its runtime column cannot change its answer. */
export const showsRuntime = (status: string) => status === 'running' || status === 'stopping';

export function renderServer(s: Stored<ServerDef>, extra: { jobs?: unknown[]; grantees?: unknown[]; permissions?: unknown[]; tags?: unknown[] } = {}) {
  const d = s.doc;
  const rt = showsRuntime(s.status) && s.row.runtime ? (JSON.parse(String(s.row.runtime)) as ServerRuntime) : null;
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
        firewall_policy: null,
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
    vnc_password: d.vnc_password,
  };
}

export function renderServerShort(s: Stored<ServerDef>) {
  const full = renderServer(s);
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
  async load(actor: Actor, uuid: string, trx?: Kysely<any>): Promise<Stored<ServerDef>> {
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

  /** Checks that everything a definition refers to exists and may be used by the actor. */
  private async checkReferences(actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Kysely<any>): Promise<void> {
    const drives = await this.store.drives.getMany(def.drives.map((d) => d.drive), trx);
    const byId = new Map(drives.map((d) => [d.uuid, d]));
    const before = new Set(previous?.drives.map((d) => d.drive) ?? []);
    for (const a of def.drives) {
      const d = byId.get(a.drive);
      const library = d && d.owner === null;
      if (!d || (!library && !(await this.svc.access.canUse(actor, 'drives', d, trx)))) throw errors.invalid('drives.drive', `Drive ${a.drive} does not exist`);
      if (library && d.doc.media !== 'cdrom')
        throw errors.permission(`Library drive ${a.drive} is a disk: clone it into your account before attaching it`, 'drives.drive');
      // A drive still being created may be attached (its bytes are there before anyone can start the server);
      // one whose bytes are being copied or uploaded may not.
      if (['cloning_dst', 'uploading'].includes(d.status) && !before.has(a.drive))
        throw errors.permission(`Drive ${a.drive} is ${d.status} and cannot be attached yet`, 'drives.drive');
      if (!before.has(a.drive) && d.doc.media !== 'cdrom' && !d.doc.allow_multimount && !library) {
        const others = await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', a.drive).where('server_uuid', '!=', def.uuid).execute();
        if (others.length) throw errors.permission(`Drive ${a.drive} is already mounted on another server and does not allow multimount`, 'drives.drive');
      }
    }
    // Tags the server already has stay valid (a grantee's edit keeps the owner's); new ones must be the actor's.
    const added = def.tags.filter((t) => !previous?.tags.includes(t));
    const tags = await this.store.tags.getMany(added, trx);
    for (const t of added) {
      const tag = tags.find((x) => x.uuid === t);
      if (!tag || tag.owner !== actor.user) throw errors.invalid('tags', `Tag ${t} does not exist`);
    }
    const keys = await this.store.keypairs.getMany(def.pubkeys, trx);
    for (const k of def.pubkeys) {
      const kp = keys.find((x) => x.uuid === k);
      if (!kp || kp.owner !== actor.user) throw errors.invalid('pubkeys', `Public key ${k} does not exist`);
    }
    for (const check of this.svc.serverReferenceChecks) await check(actor, def, previous, trx);
  }

  /** Writes the attachment table and the status of every drive whose mounts changed. */
  private async syncAttachments(def: ServerDef, previous: ServerDef | null, trx: Kysely<any>): Promise<void> {
    const now = def.drives.map((d) => d.drive);
    const was = previous?.drives.map((d) => d.drive) ?? [];
    await trx.deleteFrom('server_drives').where('server_uuid', '=', def.uuid).execute();
    if (now.length) await trx.insertInto('server_drives').values(now.map((d) => ({ server_uuid: def.uuid, drive_uuid: d }))).execute();
    for (const d of new Set([...now, ...was])) await refreshDriveStatus(this.store, d, trx);
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<ServerDef>[]> {
    const defs = bodies.map((b) => applyServerInput(null, b, this.svc.capabilities, { defaultCpuType: this.svc.config.defaultCpuType }));
    const created = await this.store.transaction(async (trx) => {
      const out: Stored<ServerDef>[] = [];
      for (const def of defs) {
        await this.checkReferences(actor, def, null, trx);
        await this.store.servers.insert(actor.user, def, 'stopped', trx);
        await this.store.servers.setTags(def.uuid, def.tags, trx);
        await this.syncAttachments(def, null, trx);
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
      // A grantee sees no tags and cannot set them: the owner's tags (which may be what shares the server) stay.
      const input = s.owner === actor.user ? body : withoutTags(body);
      const def = applyServerInput(s.doc, input, this.svc.capabilities, { running, defaultCpuType: this.svc.config.defaultCpuType });
      const ok = await this.store.transaction(async (trx) => {
        await this.checkReferences(actor, def, s.doc, trx);
        if (!(await this.store.servers.update(def, { expectedVersion: s.version }, trx))) return false;
        await this.store.servers.setTags(def.uuid, def.tags, trx);
        if (!running) await this.syncAttachments(def, s.doc, trx);
        return true;
      });
      if (ok) {
        this.svc.publish('servers', uuid, s.owner, 'updated', actor);
        return (await this.store.servers.get(uuid))!;
      }
      // Someone else wrote in between (a status change, another edit): apply the request to the new version.
    }
    throw errors.concurrency();
  }

  async delete(actor: Actor, uuid: string, recurse: string | undefined): Promise<void> {
    if (recurse !== undefined && !['all_drives', 'disks', 'cdroms'].includes(recurse))
      throw errors.invalid('recurse', `recurse must be all_drives, disks or cdroms, not ${recurse}`);
    const s = await this.load(actor, uuid);
    if (s.owner !== actor.user) throw errors.permission('Only the owner may delete a server');
    if (s.status !== 'stopped') throw errors.permission(`Cannot delete server in state "${s.status}". Server should be in state "stopped"`);
    const deletedDrives: string[] = [];
    await this.store.transaction(async (trx) => {
      const fresh = await this.store.servers.get(uuid, trx);
      if (!fresh || fresh.status !== 'stopped') throw errors.concurrency();
      await this.store.servers.delete(uuid, trx);
      await trx.deleteFrom('server_drives').where('server_uuid', '=', uuid).execute();
      const attached = await this.store.drives.getMany(fresh.doc.drives.map((d) => d.drive), trx);
      for (const d of attached) {
        const mine = d.owner === actor.user;
        const wanted = recurse === 'all_drives' || (recurse === 'disks' && d.doc.media === 'disk') || (recurse === 'cdroms' && d.doc.media === 'cdrom');
        const stillUsed = await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', d.uuid).executeTakeFirst();
        if (wanted && mine && !stillUsed) {
          await this.svc.deleteDrive(d.uuid, trx);
          deletedDrives.push(d.uuid);
        } else await refreshDriveStatus(this.store, d.uuid, trx);
      }
    });
    this.svc.publish('servers', uuid, s.owner, 'deleted', actor);
    for (const d of deletedDrives) this.svc.publish('drives', d, s.owner, 'deleted', actor);
    await this.svc.afterDriveDelete(deletedDrives);
  }

  /** Queues a host operation in the same transaction as the state change, then wakes the host's agent. */
  private async enqueue(trx: Kysely<any>, uuid: string, host: string, kind: OperationKind, payload: Record<string, unknown> = {}) {
    return this.store.operations.enqueue(trx, { server_uuid: uuid, host, kind, payload });
  }

  /** Wakes the agent of `host` (only that one: every other agent would look for work in vain). */
  private wake(host: string): void {
    this.svc.compute?.poke();
    void this.store.dialect.notify(OPS_CHANNEL, host).catch(() => {});
  }

  private wrongState(action: string, s: Stored<ServerDef>, expected: string): never {
    throw errors.wrongState(action, INTERNAL_STATE[s.status] ?? s.status, expected);
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
        const avoid = (query.avoid ?? '').split(',').map((x) => x.trim()).filter(Boolean);
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (cur.status !== 'stopped') this.wrongState('start', cur, 'stopped');
          const notReady = (await this.store.drives.getMany(cur.doc.drives.map((d) => d.drive), trx)).find((d) =>
            ['creating', 'cloning_dst', 'uploading', 'resizing'].includes(d.status),
          );
          if (notReady) throw errors.permission(`Drive ${notReady.uuid} is ${notReady.status}; start the server when it is ready`, 'drives');
          const place = await placeServer(trx, this.store.dialect, { cpu: s.doc.cpu, mem: s.doc.mem }, avoid);
          if (!place) throw errors.capacity();
          if (!(await this.store.servers.transition(uuid, ['stopped'], 'starting', { host: place.host }, trx))) this.wrongState('start', cur, 'stopped');
          await this.enqueue(trx, uuid, place.host, 'start', { avoid });
          host = place.host;
        });
        break;
      }
      case 'stop':
      case 'shutdown': {
        // A hard stop also ends a start that hangs (docs/decisions.md); shutdown needs a running guest.
        const from = action === 'stop' ? ['running', 'stopping', 'starting'] : ['running'];
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (!from.includes(cur.status) || !cur.row.host) this.wrongState(action, cur, "['started', 'running_legacy']");
          if (cur.status !== 'running' && (await this.stopUnderway(uuid, trx))) this.wrongState(action, cur, "['started', 'running_legacy']");
          // The version check makes two concurrent stops of one server conflict on every database.
          if (!(await this.store.servers.update(cur.doc, { status: 'stopping', expectedVersion: cur.version, expectedStatus: from }, trx)))
            this.wrongState(action, cur, "['started', 'running_legacy']");
          await this.enqueue(trx, uuid, String(cur.row.host), action);
          host = String(cur.row.host);
        });
        break;
      }
      case 'restart': {
        await this.store.transaction(async (trx) => {
          const cur = (await this.store.servers.get(uuid, trx))!;
          if (cur.status !== 'running') this.wrongState('restart', cur, "['started', 'running_legacy']");
          await this.enqueue(trx, uuid, String(cur.row.host), 'restart');
          host = String(cur.row.host);
        });
        break;
      }
      case 'open_console':
      case 'open_vnc': {
        if (s.status !== 'running') this.wrongState(action, s, "['started', 'running_legacy']");
        host = String(s.row.host);
        const id = await this.store.transaction((trx) => this.enqueue(trx, uuid, host, action));
        this.wake(host);
        const result = await this.awaitOperation(id);
        const hostRow = await this.store.hosts.get(host);
        const url = `${action === 'open_vnc' ? 'vnc' : 'csconsole'}://${hostRow?.public_host ?? this.svc.config.publicHost}:${result.port}`;
        return action === 'open_vnc' ? reply({ vnc_url: url }) : reply({ console_url: url });
      }
      case 'close_console':
      case 'close_vnc': {
        if (s.row.host) {
          host = String(s.row.host);
          const id = await this.store.transaction((trx) => this.enqueue(trx, uuid, host, action));
          this.wake(host);
          await this.awaitOperation(id).catch(() => {});
        }
        break;
      }
      case 'clone':
        return this.clone(actor, s, query, body);
      default:
        throw errors.invalid('do', `Unknown action ${action}; available: start, stop, shutdown, restart, open_console, close_console, open_vnc, close_vnc, clone`);
    }
    this.wake(host);
    this.svc.publish('servers', uuid, s.owner, action, actor);
    return reply();
  }

  /** Whether a stop is already on its way; one unfinished for longer than the ACPI timeout counts as hung. */
  private async stopUnderway(uuid: string, trx: Kysely<any>): Promise<boolean> {
    const since = new Date(Date.now() - this.svc.config.acpiTimeoutS * 1000).toISOString();
    const op = await trx
      .selectFrom('operations')
      .select('id')
      .where('server_uuid', '=', uuid)
      .where('kind', '=', 'stop')
      .where('state', 'in', ['pending', 'running'])
      .where('created_at', '>', since)
      .executeTakeFirst();
    return !!op;
  }

  /** Waits for a host operation to finish, for actions whose reply needs its result (a console port). */
  private async awaitOperation(id: number, timeoutMs = 15000): Promise<Record<string, any>> {
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
    if (!['stopped', 'running'].includes(s.status)) this.wrongState('clone', s, 'stopped');
    const given = (k: string) => body[k] !== undefined && body[k] !== null;
    const name = given('name') ? readString(body.name, 'name', { nonEmpty: true, max: 1024 }) : await cloneName(this.svc, actor.user, s.doc.name, 'servers');
    const randomVnc = given('random_vnc_password') && readBool(body.random_vnc_password, 'random_vnc_password');
    // avoid is a hint: what is not a server or drive id is ignored, never an error.
    const avoid = (query.avoid ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(isUuid);
    const newUuid = crypto.randomUUID();
    const job = await this.svc.jobs.start({ owner: actor.user, operation: 'server_clone', resources: [['servers', s.uuid], ['servers', newUuid]] });
    const clonedDrives: string[] = [];
    const created = await this.store.transaction(async (trx) => {
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
      const drives = await this.store.drives.getMany(def.drives.map((d) => d.drive), trx);
      if (s.owner !== actor.user) await this.leaveOutWhatTheNewOwnerMayNotUse(actor, def, drives, trx);
      for (const a of def.drives) {
        const d = drives.find((x) => x.uuid === a.drive);
        if (d && d.doc.media === 'disk') {
          a.drive = await cloneDriveRecord(this.svc, actor, d, {}, trx, avoid);
          clonedDrives.push(a.drive);
        }
      }
      await this.store.servers.insert(actor.user, def, 'stopped', trx);
      await this.store.servers.setTags(def.uuid, def.tags, trx);
      await trx.deleteFrom('server_drives').where('server_uuid', '=', def.uuid).execute();
      if (def.drives.length) await trx.insertInto('server_drives').values(def.drives.map((d) => ({ server_uuid: def.uuid, drive_uuid: d.drive }))).execute();
      return (await this.store.servers.get(def.uuid, trx))!;
    }).catch(async (e) => {
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
   * resources and put it under the owner's ACLs), SSH keys, private VLANs, or CD-ROMs he may not attach himself.
   */
  private async leaveOutWhatTheNewOwnerMayNotUse(actor: Actor, def: ServerDef, drives: Stored<DriveDoc>[], trx: Kysely<any>): Promise<void> {
    const own = (rows: Array<{ uuid: string; owner: string | null }>) => new Set(rows.filter((r) => r.owner === actor.user).map((r) => r.uuid));
    const tags = own(await this.store.tags.getMany(def.tags, trx));
    def.tags = def.tags.filter((t) => tags.has(t));
    const keys = own(await this.store.keypairs.getMany(def.pubkeys, trx));
    def.pubkeys = def.pubkeys.filter((k) => keys.has(k));
    const vlans = own(await this.store.vlans.getMany(def.nics.flatMap((n) => (n.vlan ? [n.vlan] : [])), trx));
    def.nics = def.nics.filter((n) => !n.vlan || vlans.has(n.vlan));
    const usable = new Set<string>();
    for (const d of drives)
      if (d.doc.media !== 'cdrom' || d.owner === null || d.owner === actor.user || (await this.svc.access.canUse(actor, 'drives', d, trx))) usable.add(d.uuid);
    def.drives = def.drives.filter((a) => usable.has(a.drive));
  }

  async runtime(actor: Actor, uuid: string) {
    const s = await this.load(actor, uuid);
    return renderServer(s).runtime;
  }

  /** Servers that share a physical host: only running ones. */
  async availabilityGroups(actor: Actor): Promise<string[][]> {
    const rows = (await this.store.db
      .selectFrom('servers')
      .select(['uuid', 'host'])
      .where('owner', '=', actor.user)
      .where('status', 'in', ['running', 'starting', 'stopping'])
      .where('host', 'is not', null)
      .orderBy('seq')
      .execute()) as Array<{ uuid: string; host: string }>;
    const groups = new Map<string, string[]>();
    for (const r of rows) groups.set(r.host, [...(groups.get(r.host) ?? []), r.uuid]);
    return [...groups.values()];
  }

  async availabilityGroup(actor: Actor, uuid: string): Promise<string[]> {
    const s = await this.load(actor, uuid);
    if (!s.row.host || !['running', 'starting', 'stopping'].includes(s.status)) return [];
    return (await this.availabilityGroups(actor)).find((g) => g.includes(uuid)) ?? [];
  }
}
