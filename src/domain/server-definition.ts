import { errors } from '../errors.ts';
import { readRef, readRefList } from './refs.ts';
import { type Capabilities, type HostLimits, hostLimits, validCpuTypes } from './capabilities.ts';
import { newMac, newUuid } from './ids.ts';
import { readBool, readInt, readMeta, readString } from './input.ts';

export interface IpConf {
  conf: 'dhcp' | 'static' | 'manual';
  ip: string | null;
}

export interface NicDef {
  boot_order: number | null;
  ip_v4_conf: IpConf | null;
  ip_v6_conf: IpConf | null;
  mac: string;
  model: string;
  vlan: string | null;
  /** uuid of the firewall policy on a public NIC; absent in documents written before policies existed */
  firewall_policy?: string | null;
}

export interface DriveAttachment {
  boot_order: number | null;
  dev_channel: string;
  device: 'ide' | 'virtio' | 'scsi';
  drive: string;
}

/** A server's stored definition: what the user set. Status, runtime, owner and jobs live elsewhere. */
export interface ServerDef {
  uuid: string;
  name: string;
  cpu: number;
  mem: number;
  smp: number;
  vnc_password: string;
  context: boolean;
  cpu_model: string | null;
  cpu_type: string;
  cpus_instead_of_cores: boolean;
  enable_numa: boolean;
  hv_relaxed: boolean;
  hv_tsc: boolean;
  hypervisor: string;
  meta: Record<string, string>;
  nics: NicDef[];
  drives: DriveAttachment[];
  pubkeys: string[];
  tags: string[];
  requirements: unknown[];
  gpus: Array<{ model: string }>;
  epcs: Array<{ size: number }>;
  auto_start: boolean;
  allocation_pool: string | null;
  is_grey: boolean;
}

export const NIC_MODELS = ['virtio', 'e1000', 'rtl8139', 'i82551', 'i82557b', 'i82559er', 'ne2k_pci', 'pcnet'];
export const DRIVE_DEVICES = ['ide', 'virtio', 'scsi'] as const;
/** Highest controller and unit per bus (ide: 2 controllers x 2 units, as the schema says). */
const CHANNEL_LIMITS: Record<string, { controllers: number; units: number }> = {
  ide: { controllers: 2, units: 2 },
  virtio: { controllers: 256, units: 6 },
  scsi: { controllers: 4, units: 16 },
};

/**
 * Fields that may change while the server runs; every other change to a running server is ignored. Besides these,
 * the `firewall_policy` of a NIC it already has may change (see readRunningNicPolicies).
 */
export const RUNNING_EDITABLE = ['name', 'meta', 'tags'] as const;

type Body = Record<string, unknown>;

function readIpConf(v: unknown, point: string): IpConf | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw errors.invalid(point, 'Expected an object {"conf": "dhcp|static|manual", "ip": ...}');
  const o = v as Body;
  const conf = o.conf ?? 'dhcp';
  if (conf !== 'dhcp' && conf !== 'static' && conf !== 'manual')
    throw errors.invalid(`${point}.conf`, `Select a valid choice. ${String(conf)} is not one of the available choices: dhcp, static, manual`);
  const ip = o.ip === null || o.ip === undefined ? null : readRef(o.ip, `${point}.ip`, { kind: 'ip' });
  if (conf === 'static' && !ip) throw errors.invalid(`${point}.ip`, 'An IP address is required for static configuration');
  if (conf !== 'static' && ip) throw errors.invalid(`${point}.ip`, `An IP address can only be given with static configuration, not ${conf}`);
  return { conf, ip };
}

const POLICY_POINT = 'nics.firewall_policy';

/**
 * A NIC element's `firewall_policy`: a reference sets it, null clears it, and leaving the key out keeps what the NIC
 * had (clients that never heard of policies resend NICs without it), unless the NIC became a private one.
 */
function readNicPolicy(o: Body, had: NicDef | undefined, vlan: string | null): string | null {
  if (!Object.prototype.hasOwnProperty.call(o, 'firewall_policy') || o.firewall_policy === undefined) return vlan ? null : (had?.firewall_policy ?? null);
  if (o.firewall_policy === null || o.firewall_policy === '') return null;
  const policy = readRef(o.firewall_policy, POLICY_POINT);
  if (vlan) throw errors.invalid(POLICY_POINT, 'A firewall policy applies to public NICs only; this NIC is on a VLAN');
  return policy;
}

/**
 * On a running server only the firewall policy of NICs it already has may change (CloudSigma applied policy changes
 * to running guests); NIC elements without a known MAC, and every other NIC field, are ignored like the rest.
 */
function readRunningNicPolicies(v: unknown, existing: NicDef[]): NicDef[] {
  if (!Array.isArray(v)) return existing;
  const out = existing.map((n) => ({ ...n }));
  for (const raw of v) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) continue;
    const o = raw as Body;
    const mac = typeof o.mac === 'string' ? o.mac.toLowerCase() : undefined;
    const nic = out.find((n) => n.mac === mac);
    if (nic) nic.firewall_policy = readNicPolicy(o, nic, nic.vlan);
  }
  return out;
}

function readNics(v: unknown, existing: NicDef[]): NicDef[] {
  if (v === null) return [];
  if (!Array.isArray(v)) throw errors.invalid('nics', 'Expected a list of NICs');
  const known = new Map(existing.map((n) => [n.mac, n]));
  const seen = new Set<string>();
  return v.map((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw errors.invalid('nics', `NIC ${i} is not an object`);
    const o = raw as Body;
    let mac: string;
    if (o.mac !== undefined && o.mac !== null && o.mac !== '') {
      mac = readString(o.mac, 'nics.mac').toLowerCase();
      if (!known.has(mac)) throw errors.invalid('nics.mac', `NIC with MAC ${mac} is not attached to this server; omit mac to add a new NIC`);
    } else mac = newMac();
    if (seen.has(mac)) throw errors.invalid('nics.mac', `MAC ${mac} appears twice`);
    seen.add(mac);
    const ip_v4_conf = readIpConf(o.ip_v4_conf, 'nics.ip_v4_conf');
    const ip_v6_conf = readIpConf(o.ip_v6_conf, 'nics.ip_v6_conf');
    const vlan = o.vlan === null || o.vlan === undefined ? null : readRef(o.vlan, 'nics.vlan');
    if (vlan && ip_v4_conf && ip_v6_conf) throw errors.invalid('nics', 'Cannot assign all configs on a NIC');
    if (vlan && (ip_v4_conf || ip_v6_conf)) throw errors.invalid('nics', 'Cannot assign both Private and Public on a NIC');
    const model = o.model === undefined || o.model === null ? (known.get(mac)?.model ?? 'virtio') : readString(o.model, 'nics.model');
    if (!NIC_MODELS.includes(model))
      throw errors.invalid('nics.model', `Select a valid choice. ${model} is not one of the available choices: ${NIC_MODELS.join(', ')}`);
    const boot_order = o.boot_order === null || o.boot_order === undefined ? null : readInt(o.boot_order, 'nics.boot_order', { min: 1 });
    const firewall_policy = readNicPolicy(o, known.get(mac), vlan);
    return { boot_order, ip_v4_conf, ip_v6_conf, mac, model, vlan, firewall_policy };
  });
}

function channelKey(d: DriveAttachment): [number, number, number] {
  const [c, u] = d.dev_channel.split(':').map(Number) as [number, number];
  return [DRIVE_DEVICES.indexOf(d.device), c, u];
}

function readDrives(v: unknown): DriveAttachment[] {
  if (v === null) return [];
  if (!Array.isArray(v)) throw errors.invalid('drives', 'Expected a list of drive attachments');
  const channels = new Set<string>();
  const drives = new Set<string>();
  const out = v.map((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw errors.invalid('drives', `Drive attachment ${i} is not an object`);
    const o = raw as Body;
    if (o.drive === undefined || o.drive === null) throw errors.required('drives.drive');
    const drive = readRef(o.drive, 'drives.drive');
    if (o.device === undefined || o.device === null) throw errors.required('drives.device');
    const device = readString(o.device, 'drives.device') as DriveAttachment['device'];
    if (!DRIVE_DEVICES.includes(device))
      throw errors.invalid('drives.device', `Select a valid choice. ${device} is not one of the available choices: ${DRIVE_DEVICES.join(', ')}`);
    if (o.dev_channel === undefined || o.dev_channel === null) throw errors.required('drives.dev_channel');
    const dev_channel = readString(o.dev_channel, 'drives.dev_channel');
    const m = /^(\d+):(\d+)$/.exec(dev_channel);
    const lim = CHANNEL_LIMITS[device]!;
    if (!m || Number(m[1]) >= lim.controllers || Number(m[2]) >= lim.units)
      throw errors.invalid(
        'drives.dev_channel',
        `Invalid dev_channel ${dev_channel} for ${device}: use {controller}:{unit} with controller < ${lim.controllers} and unit < ${lim.units}`,
      );
    const key = `${device}/${Number(m[1])}:${Number(m[2])}`;
    if (channels.has(key)) throw errors.invalid('drives.dev_channel', `Device channel ${dev_channel} is used twice on ${device}`);
    channels.add(key);
    if (drives.has(drive)) throw errors.invalid('drives.drive', `Drive ${drive} is attached twice`);
    drives.add(drive);
    const boot_order = o.boot_order === null || o.boot_order === undefined ? null : readInt(o.boot_order, 'drives.boot_order', { min: 1 });
    return { boot_order, dev_channel: `${Number(m[1])}:${Number(m[2])}`, device, drive };
  });
  // Attachments are listed by bus, then channel, as the real API answers (ide before virtio).
  return out.sort((a, b) => {
    const ka = channelKey(a);
    const kb = channelKey(b);
    return ka[0] - kb[0] || ka[1] - kb[1] || ka[2] - kb[2];
  });
}

/**
 * `given` (attachments as a grantee set them) with `kept` (those he was not shown) put back: a channel or drive
 * taken twice is refused as readDrives refuses it, and the list is ordered the same way.
 */
export function mergeAttachments(given: DriveAttachment[], kept: DriveAttachment[]): DriveAttachment[] {
  for (const k of kept) {
    const same = given.find((g) => g.device === k.device && g.dev_channel === k.dev_channel);
    if (same) throw errors.invalid('drives.dev_channel', `Device channel ${k.dev_channel} is used twice on ${k.device}`);
    if (given.some((g) => g.drive === k.drive)) throw errors.invalid('drives.drive', `Drive ${k.drive} does not exist`);
  }
  return [...given, ...kept].sort((a, b) => {
    const ka = channelKey(a);
    const kb = channelKey(b);
    return ka[0] - kb[0] || ka[1] - kb[1] || ka[2] - kb[2];
  });
}

function readGpus(v: unknown, caps: Capabilities): ServerDef['gpus'] {
  if (v === null) return [];
  if (!Array.isArray(v)) throw errors.invalid('gpus', 'Expected a list of GPUs');
  const offered = (caps.gpus ?? {}) as Record<string, { max_per_host?: number }>;
  const models = Object.keys(offered);
  const out = v.map((g) => {
    if (!g || typeof g !== 'object' || Array.isArray(g)) throw errors.invalid('gpus', 'Expected a list of {"model": ...}');
    const m = (g as Body).model;
    if (m === undefined || m === null) throw errors.required('gpus.model');
    const model = readString(m, 'gpus.model');
    if (!models.includes(model)) throw errors.invalid('gpus.model', `GPU model ${model} is not available; available: ${models.join(', ') || 'none'}`);
    return { model };
  });
  // One server sits on one host: it cannot have more of a model than a host holds.
  for (const model of new Set(out.map((g) => g.model))) {
    const n = out.filter((g) => g.model === model).length;
    const max = offered[model]!.max_per_host;
    if (max !== undefined && n > max) throw errors.invalid('gpus', `At most ${max} GPUs of model ${model} fit on one host, not ${n}`);
  }
  return out;
}

function readEpcs(v: unknown, caps: Capabilities): ServerDef['epcs'] {
  if (v === null) return [];
  if (!Array.isArray(v)) throw errors.invalid('epcs', 'Expected a list of EPCs');
  const out = v.map((e) => {
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw errors.invalid('epcs', 'Expected a list of {"size": ...}');
    if ((e as Body).size === undefined || (e as Body).size === null) throw errors.required('epcs.size');
    return { size: readInt((e as Body).size, 'epcs.size', { min: 1 }) };
  });
  const total = out.reduce((s, e) => s + e.size, 0);
  const max = caps.epc?.max_per_host;
  if (max !== undefined && total > max) throw errors.invalid('epcs.size', `Total EPC size ${total} exceeds the maximum of ${max} bytes`);
  return out;
}

/**
 * Applies a create or edit body to a server definition. A field present replaces, a field absent keeps, read-only
 * fields are ignored. When `running`, only name, meta, tags and NICs' firewall policies take effect. Returns the validated new definition.
 */
/** `defaultCpuType`: what a server gets without a cpu_type (the installation's hosts; CloudSigma's default is amd). */
export function applyServerInput(
  existing: ServerDef | null,
  body: Body,
  caps: Capabilities,
  opts: { running?: boolean; defaultCpuType?: string } = {},
): ServerDef {
  const defaultCpuType = opts.defaultCpuType ?? 'amd';
  const has = (k: string) => Object.prototype.hasOwnProperty.call(body, k) && body[k] !== undefined;
  const base: ServerDef = existing
    ? structuredClone(existing)
    : {
        uuid: newUuid(),
        name: '',
        cpu: 0,
        mem: 0,
        smp: 1,
        vnc_password: '',
        context: true,
        cpu_model: null,
        cpu_type: defaultCpuType,
        cpus_instead_of_cores: false,
        enable_numa: false,
        hv_relaxed: false,
        hv_tsc: false,
        hypervisor: 'kvm',
        meta: {},
        nics: [],
        drives: [],
        pubkeys: [],
        tags: [],
        requirements: [],
        gpus: [],
        epcs: [],
        auto_start: false,
        allocation_pool: null,
        is_grey: false,
      };
  const d = base;
  if (!existing) for (const k of ['name', 'cpu', 'mem', 'vnc_password']) if (!has(k) || body[k] === null) throw errors.required(k);

  if (has('name')) d.name = readString(body.name, 'name', { max: 1024 });
  if (has('meta')) d.meta = readMeta(body.meta, 'meta');
  if (has('tags')) d.tags = readRefList(body.tags, 'tags');
  if (opts.running) {
    if (has('nics')) d.nics = readRunningNicPolicies(body.nics, d.nics);
    return d;
  }

  if (has('cpu')) d.cpu = readInt(body.cpu, 'cpu', { min: 1 });
  if (has('mem')) d.mem = readInt(body.mem, 'mem', { min: 1 });
  if (has('smp') && body.smp !== null) d.smp = readInt(body.smp, 'smp', { min: 1 });
  if (has('vnc_password')) d.vnc_password = readString(body.vnc_password, 'vnc_password', { nonEmpty: true, max: 64 });
  for (const k of ['context', 'cpus_instead_of_cores', 'enable_numa', 'hv_relaxed', 'hv_tsc', 'auto_start', 'is_grey'] as const)
    if (has(k)) d[k] = readBool(body[k], k);
  if (has('cpu_model')) {
    d.cpu_model = body.cpu_model === null || body.cpu_model === '' ? null : readString(body.cpu_model, 'cpu_model');
    if (d.cpu_model !== null && d.cpu_model !== 'kvm64')
      throw errors.invalid('cpu_model', `Select a valid choice. ${d.cpu_model} is not one of the available choices: kvm64`);
  }
  if (has('allocation_pool')) d.allocation_pool = body.allocation_pool === null ? null : readString(body.allocation_pool, 'allocation_pool');
  if (has('hypervisor')) {
    d.hypervisor = readString(body.hypervisor, 'hypervisor');
    // A (new) hypervisor given without a cpu_type gets the default; resending the same one keeps the cpu_type.
    if (!has('cpu_type') && (!existing || existing.hypervisor !== d.hypervisor)) d.cpu_type = defaultCpuType;
  }
  if (has('cpu_type')) d.cpu_type = readString(body.cpu_type, 'cpu_type');
  if (has('requirements')) {
    // Free-form in the schema and always [] in practice: a list of strings keeps it storable and bounded.
    if (body.requirements !== null && !Array.isArray(body.requirements)) throw errors.invalid('requirements', 'Expected a list of strings');
    d.requirements = ((body.requirements as unknown[] | null) ?? []).map((r) => readString(r, 'requirements', { max: 1024 }));
  }
  if (has('nics')) d.nics = readNics(body.nics, existing?.nics ?? []);
  if (has('drives')) d.drives = readDrives(body.drives);
  if (has('pubkeys')) d.pubkeys = readRefList(body.pubkeys, 'pubkeys');
  if (has('gpus')) d.gpus = readGpus(body.gpus, caps);
  if (has('epcs')) d.epcs = readEpcs(body.epcs, caps);

  validateAgainstCapabilities(d, caps);
  return d;
}

export function validateAgainstCapabilities(d: ServerDef, caps: Capabilities): void {
  const types = validCpuTypes(caps, d.hypervisor);
  if (!types) throw errors.invalid('hypervisor', `Hypervisor ${d.hypervisor} is not available; available: ${Object.keys(caps.hypervisors).join(', ')}`);
  if (!types.includes(d.cpu_type))
    throw errors.invalid('cpu_type', `CPU type ${d.cpu_type} is not available with hypervisor ${d.hypervisor}; available: ${types.join(', ')}`);
  const lim = hostLimits(caps, d.cpu_type) ?? (caps.servers as HostLimits);
  const range = (v: number, r: { min: number; max: number }, point: string, unit: string) => {
    if (v < r.min || v > r.max) throw errors.invalid(point, `${point} must be between ${r.min} and ${r.max} ${unit}, not ${v}`);
  };
  range(d.cpu, lim.cpu, 'cpu', 'MHz');
  range(d.mem, lim.mem, 'mem', 'bytes');
  range(d.smp, lim.smp, 'smp', 'cores');
  // A server with a GPU runs on a GPU host: it cannot be bigger than one.
  for (const model of new Set(d.gpus.map((g) => g.model))) {
    const g = (caps.gpus as Record<string, { max_cpu_per_host?: number; max_memory_per_host?: number; max_smp_per_host?: number }>)[model] ?? {};
    const over = (v: number, max: number | undefined, point: string) => {
      if (max !== undefined && v > max) throw errors.invalid(point, `${point} ${v} is more than a host with ${model} has (${max})`);
    };
    over(d.cpu, g.max_cpu_per_host, 'cpu');
    over(d.mem, g.max_memory_per_host, 'mem');
    over(d.smp, g.max_smp_per_host, 'smp');
  }
  const perSmp = d.cpu / d.smp;
  // CloudSigma's own minimum cpu is below cpu_per_smp.min, so the minimum only binds with several cores.
  if (perSmp > lim.cpu_per_smp.max || (d.smp > 1 && perSmp < lim.cpu_per_smp.min))
    throw errors.invalid(
      'cpu',
      `CPU per core must be between ${lim.cpu_per_smp.min} and ${lim.cpu_per_smp.max} MHz; ${d.cpu} MHz over ${d.smp} cores is ${Math.round(perSmp)} MHz`,
    );
}
