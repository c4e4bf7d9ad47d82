import path from 'node:path';
import { DriverError, type GuestDrive, type GuestNic, type GuestSpec } from '../driver.ts';

/** Debian's cloud kernel cannot boot below ~80 MiB (its decompressor needs 51.5 MiB above 16 MiB); keep a margin. */
export const MIN_GUEST_MEM_MIB = 96;

/** Host-side settings that shape the command line but are not part of the server definition. */
export interface HostSettings {
  accel: 'tcg' | 'kvm';
  /** Per-guest directory for sockets, pid file and logs. */
  runDir: string;
  /** First VNC display tried (port 5900 + display); QEMU walks up to `vncDisplayMax` until one is free. */
  vncDisplayBase?: number;
  vncDisplayMax?: number;
  /**
   * TCG translation cache size in MiB (default 256: a systemd + cloud-init guest reaches SSH in half the time it
   * needs with 32, as TCG retranslates less; the cache is host memory, filled as the guest runs new code).
   */
  tcgTbSizeMiB?: number;
  /** Public NICs' user-mode networks may open connections out of the host (QEMU `restrict=off`). Default off. */
  guestEgress?: boolean;
  /** Address QEMU's VNC server listens on (default 127.0.0.1). */
  vncHost?: string;
}

/** Files a guest's QEMU uses in its run dir; the driver and the command line agree on them through this. */
export function runFiles(runDir: string) {
  return {
    pid: path.join(runDir, 'qemu.pid'),
    qmp: path.join(runDir, 'qmp.sock'),
    serial: path.join(runDir, 'serial.sock'),
    consoleLog: path.join(runDir, 'console.log'),
    context: path.join(runDir, 'context.sock'),
    log: path.join(runDir, 'qemu.log'),
    spec: path.join(runDir, 'spec.json'),
    /** Private NIC i: QEMU listens here, the driver's VLAN hub connects. */
    nic: (i: number) => path.join(runDir, `nic${i}.sock`),
    /**
     * Public NIC i: `in` mirrors what the guest receives (for counting); `sent` diverts every frame the guest sends
     * to the driver, which answers DHCP (and DNS while egress is off) on `reply` and passes the rest on to QEMU's
     * network on `pass`.
     */
    publicNic: (i: number, role: 'in' | 'sent' | 'pass' | 'reply') => path.join(runDir, `nic${i}-${role}.sock`),
  };
}

const NIC_DEVICES: Record<string, string> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  rtl8139: 'rtl8139',
  i82551: 'i82551',
  i82557b: 'i82557b',
  i82559er: 'i82559er',
  ne2k_pci: 'ne2k_pci',
  pcnet: 'pcnet',
};

/** QEMU's option parser splits on commas; a literal comma is written twice. */
function q(v: string): string {
  return v.replace(/,/g, ',,');
}

function channel(d: GuestDrive): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(d.dev_channel);
  if (!m) throw new DriverError(`drive ${d.uuid}: invalid dev_channel ${d.dev_channel}`, 'invalid');
  return [Number(m[1]), Number(m[2])];
}

/** Guest memory in MiB from bytes, refusing sizes the guest kernel cannot boot with. */
export function guestMemMiB(bytes: number): number {
  const mib = Math.round(bytes / 2 ** 20);
  if (!(mib >= MIN_GUEST_MEM_MIB))
    throw new DriverError(
      `mem ${bytes} bytes (${mib} MiB) is too small for a real VM: QEMU guests need at least ${MIN_GUEST_MEM_MIB} MiB (${MIN_GUEST_MEM_MIB * 2 ** 20} bytes)`,
      'invalid',
    );
  return mib;
}

/** `a.b.c.d` -> number, or throws. */
function ipv4(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new DriverError(`not an IPv4 address: ${ip}`, 'invalid');
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** TCP ports of a guest reachable at its public NIC's address when nothing else says which (SSH, HTTP, HTTPS). */
import { DEFAULT_FORWARDED_PORTS } from '../driver.ts';

export { DEFAULT_FORWARDED_PORTS };

/** One host-side listener that QEMU forwards into the guest. */
export interface PortForward {
  proto: 'tcp';
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

/**
 * Which connections to a public NIC's address reach the guest: the one place that decides it, so firewall policies
 * can narrow or widen the list (`GuestNic.ports`). The address is the host-side one the API shows (by default in
 * 127.0.0.0/8: every one of those is a local address on Linux, so any of them can be bound without configuration).
 */
export function portForwards(nic: GuestNic): PortForward[] {
  if (nic.kind !== 'public' || !nic.ip) return [];
  ipv4(nic.ip); // a malformed address is the caller's mistake, not a QEMU start failure
  const ports = [...new Set(nic.ports ?? DEFAULT_FORWARDED_PORTS)].sort((a, b) => a - b);
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new DriverError(`NIC ${nic.mac}: invalid port ${p}`, 'invalid');
  return ports.map((p) => ({ proto: 'tcp', hostAddr: nic.ip!, hostPort: p, guestPort: p }));
}

/**
 * The private network a public NIC's guest sees behind QEMU's address translation: NIC i is alone on
 * 10.0.(2+i).0/24 (i = 0 is QEMU's usual 10.0.2.0/24) with its gateway on .2 and its nameserver on .3 (QEMU answers
 * ARP and ping for both), and the driver's DHCP answer leases it .15 with both (see guestnet.ts). Distinct subnets per NIC keep a guest with two
 * public NICs from seeing one subnet on both.
 */
export function publicNet(index: number): { net: string; host: string; dns: string; dhcpstart: string; mask: string } {
  if (!Number.isInteger(index) || index < 0 || index > 250) throw new DriverError(`NIC index ${index} out of range`, 'invalid');
  const p = `10.0.${2 + index}`;
  return { net: `${p}.0/24`, host: `${p}.2`, dns: `${p}.3`, dhcpstart: `${p}.15`, mask: '255.255.255.0' };
}

function cpuModel(spec: GuestSpec, accel: HostSettings['accel']): string {
  const flags: string[] = [];
  if (spec.hv_relaxed) flags.push('hv-relaxed=on');
  if (spec.hv_tsc) flags.push('hv-time=on');
  const model = spec.cpu_model === 'kvm64' ? 'kvm64' : accel === 'kvm' ? 'host' : 'qemu64';
  return [model, ...flags].join(',');
}

function smpArgs(spec: GuestSpec): { arg: string; sockets: number; coresPerSocket: number } {
  const n = Math.max(1, Math.floor(spec.smp || 1));
  const sockets = spec.cpus_instead_of_cores ? n : 1;
  const cores = spec.cpus_instead_of_cores ? 1 : n;
  return { arg: `${n},sockets=${sockets},cores=${cores},threads=1`, sockets, coresPerSocket: cores };
}

/** One NUMA node per socket (a single node when all vCPUs are cores of one socket); memory split evenly. */
function numaArgs(memMiB: number, sockets: number, coresPerSocket: number): string[] {
  const out: string[] = [];
  const per = Math.floor(memMiB / sockets);
  for (let i = 0; i < sockets; i++) {
    const size = i === sockets - 1 ? memMiB - per * (sockets - 1) : per;
    const first = i * coresPerSocket;
    const last = first + coresPerSocket - 1;
    out.push('-object', `memory-backend-ram,id=ram-node${i},size=${size}M`);
    out.push('-numa', `node,nodeid=${i},cpus=${first === last ? first : `${first}-${last}`},memdev=ram-node${i}`);
  }
  return out;
}

const DEVICE_ORDER = ['ide', 'virtio', 'scsi'];

function driveArgs(drives: GuestDrive[]): string[] {
  const out: string[] = [];
  const sorted = [...drives].sort((a, b) => {
    const [ca, ua] = channel(a);
    const [cb, ub] = channel(b);
    return DEVICE_ORDER.indexOf(a.device) - DEVICE_ORDER.indexOf(b.device) || ca - cb || ua - ub;
  });
  const scsiControllers = new Set<number>();
  for (const d of sorted) {
    if (!d.path) throw new DriverError(`drive ${d.uuid} has no image file on this host`, 'invalid');
    if (d.format !== 'raw' && d.format !== 'qcow2') throw new DriverError(`drive ${d.uuid}: unknown format ${String(d.format)}`, 'invalid');
    const [c, u] = channel(d);
    const id = `drive-${d.uuid}`;
    const cdrom = d.media === 'cdrom';
    out.push('-drive', `file=${q(d.path)},if=none,id=${id},format=${d.format}` + (cdrom ? ',media=cdrom,readonly=on' : ',cache=writeback,discard=unmap'));
    const boot = d.boot_order != null ? `,bootindex=${d.boot_order}` : '';
    switch (d.device) {
      case 'ide':
        if (c > 1 || u > 1) throw new DriverError(`drive ${d.uuid}: ide channel ${d.dev_channel} does not exist`, 'invalid');
        out.push('-device', `${cdrom ? 'ide-cd' : 'ide-hd'},drive=${id},id=dev-${d.uuid},bus=ide.${c},unit=${u}${boot}`);
        break;
      case 'virtio':
        out.push('-device', `virtio-blk-pci,drive=${id},id=dev-${d.uuid}${boot}`);
        break;
      case 'scsi':
        if (!scsiControllers.has(c)) {
          scsiControllers.add(c);
          out.push('-device', `virtio-scsi-pci,id=scsi${c}`);
        }
        out.push('-device', `${cdrom ? 'scsi-cd' : 'scsi-hd'},drive=${id},id=dev-${d.uuid},bus=scsi${c}.0,channel=0,scsi-id=${u},lun=0${boot}`);
        break;
      default:
        throw new DriverError(`drive ${d.uuid}: unknown device ${String(d.device)}`, 'invalid');
    }
  }
  return out;
}

function nicArgs(nics: GuestNic[], runDir: string, egress: boolean): string[] {
  const files = runFiles(runDir);
  const out: string[] = [];
  nics.forEach((n, i) => {
    const model = NIC_DEVICES[n.model];
    if (!model) throw new DriverError(`NIC ${n.mac}: unknown model ${n.model}`, 'invalid');
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.mac)) throw new DriverError(`NIC: invalid MAC ${n.mac}`, 'invalid');
    const id = `net${i}`;
    if (n.kind === 'public' && n.ip) {
      const p = publicNet(i);
      const fwd = portForwards(n).map((f) => `,hostfwd=${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`);
      out.push('-netdev', `user,id=${id},net=${p.net},host=${p.host},dns=${p.dns},dhcpstart=${p.dhcpstart},restrict=${egress ? 'off' : 'on'}${fwd.join('')}`);
      for (const role of ['sent', 'pass', 'reply', 'in'] as const)
        out.push('-chardev', `socket,id=${id}-${role},path=${q(files.publicNic(i, role))},server=on,wait=off`);
      // Every frame the guest sends goes to the driver (queue=rx: what the netdev receives from the guest), which
      // writes back on `pass` what QEMU's network may have: QEMU's DHCP server leaves out the default route and the
      // nameserver under restrict=on, so the driver answers DHCP itself, and DNS while egress is off. Without the
      // driver connected nothing the guest sends gets through.
      out.push('-object', `filter-redirector,id=${id}-fsent,netdev=${id},queue=rx,outdev=${id}-sent,indev=${id}-pass`);
      // The driver's answers, sent towards the guest; created before the mirror so that they are counted too.
      out.push('-object', `filter-redirector,id=${id}-freply,netdev=${id},queue=tx,indev=${id}-reply`);
      // QEMU 7.2 has no per-NIC counters: what the guest receives is mirrored to a socket the driver counts.
      out.push('-object', `filter-mirror,id=${id}-fin,netdev=${id},queue=tx,outdev=${id}-in`);
    } else if (n.kind === 'private') {
      if (!n.vlan) throw new DriverError(`private NIC ${n.mac} has no VLAN`, 'invalid');
      out.push('-netdev', `stream,id=${id},server=on,addr.type=unix,addr.path=${q(files.nic(i))}`);
    } else {
      // A NIC on no network (or a public one the control plane gave no IPv4 address): a hub of its own.
      out.push('-netdev', `hubport,id=${id},hubid=${100 + i}`);
    }
    const boot = n.boot_order != null ? `,bootindex=${n.boot_order}` : '';
    out.push('-device', `${model},netdev=${id},mac=${n.mac.toLowerCase()},id=nic${i}${boot}`);
  });
  return out;
}

/**
 * The QEMU argv (without the binary) for a guest. Pure: same spec and settings, same argv, so it is golden-tested.
 * Throws DriverError('invalid') for definitions a real VM cannot have (too little memory, a drive without image...).
 */
export function buildCommandLine(spec: GuestSpec, host: HostSettings): string[] {
  const files = runFiles(host.runDir);
  const memMiB = guestMemMiB(spec.mem);
  const smp = smpArgs(spec);
  const accel = host.accel === 'kvm' ? 'kvm' : `tcg,tb-size=${host.tcgTbSizeMiB ?? 256}`;
  const vncBase = host.vncDisplayBase ?? 100;
  const vncMax = host.vncDisplayMax ?? vncBase + 899;
  const vncHost = host.vncHost ?? '127.0.0.1';
  const argv = [
    '-name',
    `opensigma-${spec.uuid}`,
    '-uuid',
    spec.uuid,
    '-machine',
    'pc',
    '-accel',
    accel,
    '-cpu',
    cpuModel(spec, host.accel),
    '-smp',
    smp.arg,
    '-m',
    `${memMiB}M`,
    ...(spec.enable_numa ? numaArgs(memMiB, smp.sockets, smp.coresPerSocket) : []),
    '-nodefaults',
    '-no-user-config',
    '-boot',
    'menu=off,strict=off',
    '-rtc',
    'base=utc',
    // What cloud-init's ds-identify looks for before it reads the server context from ttyS1 (CloudSigma datasource).
    '-smbios',
    'type=1,manufacturer=CloudSigma,product=CloudSigma',
    '-pidfile',
    files.pid,
    '-chardev',
    `socket,id=qmp,path=${q(files.qmp)},server=on,wait=off`,
    '-mon',
    'chardev=qmp,mode=control',
    '-chardev',
    `socket,id=serial0,path=${q(files.serial)},server=on,wait=off,logfile=${q(files.consoleLog)},logappend=on`,
    '-serial',
    'chardev:serial0',
    ...(spec.context ? ['-chardev', `socket,id=context,path=${q(files.context)},server=on,wait=off`, '-serial', 'chardev:context'] : []),
    '-device',
    'VGA',
    // Password auth from the start: nobody gets in until the driver sets the password over QMP.
    '-vnc',
    `${vncHost.includes(':') ? `[${vncHost}]` : vncHost}:${vncBase},to=${vncMax},password=on`,
    ...driveArgs(spec.drives),
    ...nicArgs(spec.nics, host.runDir, host.guestEgress === true),
    '-msg',
    'timestamp=on',
  ];
  return argv;
}
