import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  DriverError,
  type ContextProvider,
  type DriveIo,
  type GuestEvent,
  type GuestInfo,
  type GuestSpec,
  type GuestStats,
  type HostCapacity,
  type HypervisorDriver,
  type NicIo,
} from '../driver.ts';
import type { FirewallRule } from '../../domain/firewall.ts';
import { buildCommandLine, portForwards, publicNet, runFiles } from './cmdline.ts';
import { QmpClient, type QmpEvent } from './qmp.ts';
import { carryPublic, connectUnix, countMirror, VlanHub, zeroIo } from './netio.ts';
import { serveContext } from './context.ts';

export interface QemuOptions {
  dataDir: string;
  /** Name of this compute host, for logs. */
  hostName?: string;
  /** Address QEMU's VNC servers listen on (default 127.0.0.1). */
  bindHost?: string;
  /** Answers the guests' server-context requests (ttyS1). Without it, context requests get an empty reply. */
  context?: ContextProvider;
  /** 'tcg' unless a probe proved KVM works on this host (see docs/qemu.md). */
  accel?: 'tcg' | 'kvm';
  /** Why that accelerator (from probeAccel), for logs. */
  accelReason?: string;
  qemuBinary?: string;
  /** Explicit capacity; unset fields are measured (memory minus `memReserve`, MHz x cores). */
  capacity?: Partial<HostCapacity>;
  /** Host memory kept for the host itself (default: 1 GiB or 10 %, the larger). */
  memReserve?: number;
  /** Memory a QEMU process costs beyond its guest's RAM (TCG cache, devices); counted when admitting a guest (default 128 MiB, plus the translation cache under TCG). */
  perGuestOverhead?: number;
  tcgTbSizeMiB?: number;
  /** Public NICs may open connections out of the host (QEMU `restrict=off`); default off. */
  guestEgress?: boolean;
  vncDisplayBase?: number;
  /** How long start waits for QEMU's monitor before giving up (default 20 s). */
  startTimeoutMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Persisted {
  spec: GuestSpec;
  activeSince: string;
}

interface QemuGuest {
  uuid: string;
  spec: GuestSpec;
  runDir: string;
  pid: number;
  activeSince: Date;
  child: ChildProcess | null;
  qmp: QmpClient | null;
  sockets: net.Socket[];
  nics: Map<string, NicIo>;
  /** The last SHUTDOWN event's reason, if any. */
  shutdownReason: string | null;
  /** Set when the host asked for the stop (powerOff): no event then. */
  expectedStop: boolean;
  gone: boolean;
  goneWaiters: Array<() => void>;
  contextStop: (() => void) | null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid runs a QEMU of this guest (guards against pid reuse after a reboot of the host). */
function pidIsGuest(pid: number, uuid: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(`opensigma-${uuid}`);
  } catch {
    return false;
  }
}

function readPid(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Guests are real QEMU processes, one per server, each with a run dir `<dataDir>/qemu/<uuid>/` holding its pid
 * file, QMP/serial/context/NIC sockets and logs. QEMU outlives this process; a new driver on the same dataDir adopts
 * the running guests (and kills QEMUs whose run dir is gone). A guest's run dir is removed when it stops.
 */
export class QemuDriver implements HypervisorDriver {
  readonly kind = 'qemu' as const;
  readonly accel: 'tcg' | 'kvm';
  readonly accelReason: string;
  private readonly root: string;
  private readonly qemu: string;
  private readonly guestsById = new Map<string, QemuGuest>();
  private readonly hubs = new Map<string, VlanHub>();
  private readonly events = new EventEmitter();
  private readonly ready: Promise<void>;
  private readonly starting = new Set<string>();
  private closed = false;

  constructor(private readonly opts: QemuOptions) {
    this.accel = opts.accel ?? 'tcg';
    this.accelReason = opts.accelReason ?? (opts.accel ? 'configured' : 'default');
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
    this.root = path.join(opts.dataDir, 'qemu');
    fs.mkdirSync(this.root, { recursive: true });
    this.ready = this.adoptAll().catch((e: Error) => this.log('adopting running guests failed', { error: e.message }));
  }

  private log(msg: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(msg, fields);
  }

  capacity(): HostCapacity {
    const c = this.opts.capacity ?? {};
    let mem = c.mem;
    if (mem === undefined) {
      let total = os.totalmem();
      try {
        const m = /^MemTotal:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
        if (m) total = Number(m[1]) * 1024;
      } catch {
        /* not Linux: os.totalmem() */
      }
      const reserve = this.opts.memReserve ?? Math.max(2 ** 30, Math.floor(total / 10));
      mem = Math.max(0, total - reserve);
    }
    let cpu = c.cpu;
    if (cpu === undefined) {
      const cpus = os.cpus();
      const mhz = cpus[0]?.speed || 2000;
      cpu = Math.round(mhz) * Math.max(1, cpus.length);
    }
    return { cpu, mem };
  }

  private runDir(uuid: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(uuid)) throw new DriverError(`invalid guest uuid ${uuid}`, 'invalid');
    return path.join(this.root, uuid);
  }

  // ---------------------------------------------------------------- start

  async start(spec: GuestSpec): Promise<void> {
    await this.ready;
    if (this.closed) throw new DriverError('driver is closed');
    const existing = this.guestsById.get(spec.uuid);
    if ((existing && !existing.gone) || this.starting.has(spec.uuid)) throw new DriverError(`guest ${spec.uuid} is already running`);
    const runDir = this.runDir(spec.uuid);
    const argv = buildCommandLine(spec, {
      accel: this.accel,
      runDir,
      tcgTbSizeMiB: this.opts.tcgTbSizeMiB,
      guestEgress: this.opts.guestEgress,
      vncDisplayBase: this.opts.vncDisplayBase,
      vncHost: this.opts.bindHost,
    });
    // Admit a guest only if its RAM plus QEMU's own overhead fits beside the running ones.
    const cap = this.capacity();
    // ~100 MiB of QEMU itself plus the TCG translation cache (256 MiB by default), which a busy guest fills.
    const overhead = this.opts.perGuestOverhead ?? (this.accel === 'kvm' ? 128 : 128 + (this.opts.tcgTbSizeMiB ?? 256)) * 2 ** 20;
    const used = [...this.guestsById.values()].filter((g) => !g.gone).reduce((s, g) => s + g.spec.mem + overhead, 0);
    if (used + spec.mem + overhead > cap.mem)
      throw new DriverError(
        `host is out of capacity: ${Math.round((used + spec.mem + overhead) / 2 ** 20)} MiB needed, ${Math.round(cap.mem / 2 ** 20)} MiB available`,
        'capacity',
      );

    this.starting.add(spec.uuid);
    const files = runFiles(runDir);
    let child: ChildProcess | null = null;
    try {
      fs.rmSync(runDir, { recursive: true, force: true });
      fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
      const activeSince = new Date();
      fs.writeFileSync(files.spec, JSON.stringify({ spec, activeSince: activeSince.toISOString() } satisfies Persisted));
      const logFd = fs.openSync(files.log, 'a');
      try {
        // Detached, in its own process group, with no pipe to us: QEMU must survive (and not hang on) our exit.
        child = spawn(this.qemu, argv, { detached: true, stdio: ['ignore', logFd, logFd] });
      } finally {
        fs.closeSync(logFd);
      }
      child.unref();
      const exited = new Promise<never>((_, reject) => {
        child!.once('error', (e) => reject(new DriverError(`cannot run ${this.qemu}: ${e.message}`)));
        child!.once('exit', (code, sig) => reject(new DriverError(`QEMU exited during start (${sig ?? `rc ${code}`}): ${this.logTail(files.log)}`)));
      });
      exited.catch(() => {});
      const qmp = await Promise.race([QmpClient.connect(files.qmp, { timeoutMs: this.opts.startTimeoutMs ?? 20000 }), exited]);
      const g: QemuGuest = {
        uuid: spec.uuid,
        spec,
        runDir,
        pid: child.pid!,
        activeSince,
        child,
        qmp,
        sockets: [],
        nics: new Map(spec.nics.map((n) => [n.mac.toLowerCase(), zeroIo()])),
        shutdownReason: null,
        expectedStop: false,
        gone: false,
        goneWaiters: [],
        contextStop: null,
      };
      await Promise.race([this.attach(g), exited]);
      const status = await Promise.race([qmp.execute<{ status: string }>('query-status'), exited]);
      if (status.status !== 'running') throw new DriverError(`QEMU is ${status.status}, not running`);
      this.guestsById.set(spec.uuid, g);
      child.once('exit', () => this.onGone(g));
      if (qmp.isClosed || child.exitCode !== null || child.signalCode !== null) this.onGone(g);
      this.log('guest started', { uuid: spec.uuid, pid: g.pid, accel: this.accel, accelReason: this.accelReason });
    } catch (e) {
      if (child?.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await new Promise<void>((r) => (child!.exitCode !== null || child!.signalCode !== null ? r() : child!.once('exit', () => r())));
      }
      const g = this.guestsById.get(spec.uuid);
      if (g && g.child === child) this.guestsById.delete(spec.uuid);
      this.detachAll(spec.uuid);
      // QEMU's own reason (e.g. a forwarded address already in use) is in its log: read it before the run dir goes.
      const tail = this.logTail(files.log);
      fs.rmSync(runDir, { recursive: true, force: true });
      if (e instanceof DriverError) throw e;
      throw new DriverError(`QEMU failed to start: ${(e as Error).message}. ${tail}`);
    } finally {
      this.starting.delete(spec.uuid);
    }
  }

  private logTail(file: string): string {
    try {
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !/hub \d+ is not connected/.test(l))
        .slice(-3)
        .join(' | ');
    } catch {
      return '';
    }
  }

  /** Wires QMP events, NIC counters, VLAN hub ports and the context port of a running QEMU. */
  private async attach(g: QemuGuest): Promise<void> {
    const files = runFiles(g.runDir);
    const qmp = g.qmp!;
    qmp.on('event', (ev: QmpEvent) => {
      if (ev.event === 'SHUTDOWN') g.shutdownReason = String(ev.data?.reason ?? 'unknown');
      if (ev.event === 'RESET') this.log('guest reset', { uuid: g.uuid });
    });
    qmp.on('close', () => void this.watchExit(g));
    for (const [i, nic] of g.spec.nics.entries()) {
      const io = g.nics.get(nic.mac.toLowerCase())!;
      if (nic.kind === 'public' && nic.ip) {
        const [sent, pass, reply, received] = await Promise.all(
          (['sent', 'pass', 'reply', 'in'] as const).map((role) => connectUnix(files.publicNic(i, role))),
        );
        g.sockets.push(sent!, pass!, reply!, received!);
        countMirror(received!, io, 'in');
        carryPublic(sent!, pass!, reply!, io, { ...publicNet(i), egress: this.opts.guestEgress === true }, () => ({
          rules: nic.outbound,
          address: nic.ip!,
        }));
      } else if (nic.kind === 'private' && nic.vlan) {
        const s = await connectUnix(files.nic(i));
        g.sockets.push(s);
        let hub = this.hubs.get(nic.vlan);
        if (!hub) {
          hub = new VlanHub(nic.vlan);
          this.hubs.set(nic.vlan, hub);
        }
        hub.add(`${g.uuid}/${i}`, s, io);
      }
    }
    if (g.spec.context) {
      const s = await connectUnix(files.context);
      g.sockets.push(s);
      g.contextStop = serveContext(
        s,
        (req) => (this.opts.context ? this.opts.context(g.uuid, req) : Promise.resolve('')),
        (e) => this.log('context provider failed', { uuid: g.uuid, error: e.message }),
      );
    }
  }

  private detachAll(uuid: string): void {
    for (const [vlan, hub] of this.hubs) {
      for (let i = 0; i < 64; i++) hub.remove(`${uuid}/${i}`);
      if (hub.size === 0) this.hubs.delete(vlan);
    }
  }

  /** The monitor closed: QEMU is exiting. Wait for the process to go (kill it if it lingers), then clean up. */
  private async watchExit(g: QemuGuest): Promise<void> {
    if (g.gone) return;
    if (g.child && g.child.exitCode === null && g.child.signalCode === null) return; // our child: 'exit' handles it
    const deadline = Date.now() + 5000;
    while (pidAlive(g.pid) && pidIsGuest(g.pid, g.uuid)) {
      if (Date.now() > deadline) {
        try {
          process.kill(g.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(50);
    }
    this.onGone(g);
  }

  /** QEMU is gone: remove everything it left and tell the control plane unless it asked for the stop. */
  private onGone(g: QemuGuest): void {
    if (g.gone) return;
    g.gone = true;
    g.qmp?.close();
    g.contextStop?.();
    for (const s of g.sockets) s.destroy();
    this.detachAll(g.uuid);
    if (this.guestsById.get(g.uuid) === g) this.guestsById.delete(g.uuid);
    fs.rmSync(g.runDir, { recursive: true, force: true });
    const poweredOff = g.shutdownReason === 'guest-shutdown';
    this.log('guest stopped', { uuid: g.uuid, reason: g.shutdownReason ?? 'process exit', expected: g.expectedStop });
    for (const w of g.goneWaiters.splice(0)) w();
    if (!g.expectedStop && !this.closed) this.events.emit('event', { uuid: g.uuid, type: poweredOff ? 'powered_off' : 'crashed' } satisfies GuestEvent);
  }

  private whenGone(g: QemuGuest): Promise<void> {
    return g.gone ? Promise.resolve() : new Promise((r) => g.goneWaiters.push(r));
  }

  // ---------------------------------------------------------------- power

  private async running(uuid: string): Promise<QemuGuest> {
    await this.ready;
    const g = this.guestsById.get(uuid);
    if (!g || g.gone || !g.qmp) throw new DriverError(`guest ${uuid} is not running`, 'not_found');
    return g;
  }

  async powerOff(uuid: string): Promise<void> {
    const g = await this.running(uuid);
    g.expectedStop = true;
    await g.qmp!.execute('quit', undefined, 2000).catch(() => {});
    const gone = this.whenGone(g);
    const timer = setTimeout(() => {
      try {
        process.kill(g.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 3000);
    await Promise.race([gone, sleep(10000)]);
    clearTimeout(timer);
    if (!g.gone) {
      // Neither an exit event nor a closed monitor: check the process directly.
      if (!pidAlive(g.pid) || !pidIsGuest(g.pid, g.uuid)) this.onGone(g);
      else throw new DriverError(`QEMU of ${uuid} (pid ${g.pid}) does not die`);
    }
  }

  async pressPowerButton(uuid: string): Promise<void> {
    const g = await this.running(uuid);
    await g.qmp!.execute('system_powerdown');
  }

  async reset(uuid: string): Promise<void> {
    const g = await this.running(uuid);
    await g.qmp!.execute('system_reset');
    g.activeSince = new Date();
    this.persist(g);
  }

  private persist(g: QemuGuest): void {
    const file = runFiles(g.runDir).spec;
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify({ spec: g.spec, activeSince: g.activeSince.toISOString() } satisfies Persisted));
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      /* the guest is going away */
    }
  }

  // ---------------------------------------------------------------- discovery

  /** Adopts guests whose QEMU survived a restart of opensigma; removes run dirs of dead ones; kills orphans. */
  private async adoptAll(): Promise<void> {
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(this.root);
    } catch {
      return;
    }
    for (const uuid of entries) {
      if (this.guestsById.has(uuid)) continue;
      const runDir = path.join(this.root, uuid);
      const files = runFiles(runDir);
      const pid = readPid(files.pid);
      if (pid === null || !pidAlive(pid) || !pidIsGuest(pid, uuid)) {
        // A pid file is written by QEMU only once it runs; a dir without one may be a start in progress elsewhere.
        const age = Date.now() - (fs.statSync(runDir, { throwIfNoEntry: false })?.mtimeMs ?? 0);
        if (pid !== null || age > 60000) fs.rmSync(runDir, { recursive: true, force: true });
        continue;
      }
      let persisted: Persisted;
      try {
        persisted = JSON.parse(fs.readFileSync(files.spec, 'utf8')) as Persisted;
      } catch {
        this.log('killing a QEMU without a readable spec', { uuid, pid });
        await this.killPid(pid, uuid);
        fs.rmSync(runDir, { recursive: true, force: true });
        continue;
      }
      const g: QemuGuest = {
        uuid,
        spec: persisted.spec,
        runDir,
        pid,
        activeSince: new Date(persisted.activeSince),
        child: null,
        qmp: null,
        sockets: [],
        nics: new Map(persisted.spec.nics.map((n) => [n.mac.toLowerCase(), zeroIo()])),
        shutdownReason: null,
        expectedStop: false,
        gone: false,
        goneWaiters: [],
        contextStop: null,
      };
      try {
        g.qmp = await QmpClient.connect(files.qmp, { timeoutMs: 3000 });
        this.guestsById.set(uuid, g);
        await this.attach(g);
        this.log('adopted running guest', { uuid, pid });
      } catch (e) {
        this.log('cannot adopt guest, killing it', { uuid, pid, error: (e as Error).message });
        g.qmp?.close();
        this.guestsById.delete(uuid);
        for (const s of g.sockets) s.destroy();
        this.detachAll(uuid);
        await this.killPid(pid, uuid);
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    }
    // QEMUs of this data dir whose run dir is gone can never be managed again: kill them.
    const marker = `${this.root}${path.sep}`;
    for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
      } catch {
        continue;
      }
      const m = /\0-name\0opensigma-([A-Za-z0-9-]+)\0/.exec(cmd);
      if (!m || !cmd.includes(marker)) continue;
      const uuid = m[1]!;
      if (this.guestsById.has(uuid) || this.starting.has(uuid) || fs.existsSync(path.join(this.root, uuid))) continue;
      this.log('killing orphan QEMU', { uuid, pid: Number(p) });
      await this.killPid(Number(p), uuid);
    }
  }

  private async killPid(pid: number, uuid: string): Promise<void> {
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      try {
        process.kill(pid, sig);
      } catch {
        return;
      }
      for (let i = 0; i < 40 && pidAlive(pid) && pidIsGuest(pid, uuid); i++) await sleep(50);
      if (!pidAlive(pid) || !pidIsGuest(pid, uuid)) return;
    }
  }

  async guests(): Promise<GuestInfo[]> {
    await this.ready;
    const out: GuestInfo[] = [];
    for (const g of this.guestsById.values()) {
      if (g.gone) continue;
      if (!pidAlive(g.pid) || !pidIsGuest(g.pid, g.uuid)) {
        void this.watchExit(g);
        continue;
      }
      out.push({ uuid: g.uuid, state: 'running', activeSince: g.activeSince });
    }
    return out;
  }

  // ---------------------------------------------------------------- runtime

  async stats(uuid: string): Promise<GuestStats | null> {
    await this.ready;
    const g = this.guestsById.get(uuid);
    if (!g || g.gone || !g.qmp) return null;
    let blk: Array<{ device: string; qdev?: string; stats: Record<string, number> }>;
    try {
      blk = await g.qmp.execute('query-blockstats');
    } catch {
      return null;
    }
    const drives: Record<string, DriveIo> = {};
    for (const d of g.spec.drives) {
      const s = blk.find((b) => b.device === `drive-${d.uuid}`)?.stats ?? {};
      drives[d.uuid] = {
        bytes_read: s.rd_bytes ?? 0,
        bytes_written: s.wr_bytes ?? 0,
        count_flush: s.flush_operations ?? 0,
        count_read: s.rd_operations ?? 0,
        count_written: s.wr_operations ?? 0,
        total_time_ns_flush: s.flush_total_time_ns ?? 0,
        total_time_ns_read: s.rd_total_time_ns ?? 0,
        total_time_ns_write: s.wr_total_time_ns ?? 0,
      };
    }
    const nics: Record<string, NicIo> = {};
    for (const n of g.spec.nics) nics[n.mac] = { ...(g.nics.get(n.mac.toLowerCase()) ?? zeroIo()) };
    return { drives, nics };
  }

  async attachSerial(uuid: string): Promise<Duplex> {
    const g = await this.running(uuid);
    return connectUnix(runFiles(g.runDir).serial, 2000);
  }

  /** QEMU logs ttyS0 to console.log (logfile= of its chardev): its tail is what the guest already wrote. */
  async serialHistory(uuid: string, max: number): Promise<Buffer> {
    const g = await this.running(uuid);
    const file = runFiles(g.runDir).consoleLog;
    const fh = await fs.promises.open(file, 'r').catch(() => null);
    if (!fh) return Buffer.alloc(0);
    try {
      const size = (await fh.stat()).size;
      const len = Math.min(size, max);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf;
    } finally {
      await fh.close();
    }
  }

  async setPortForwards(uuid: string, mac: string, ports: number[]): Promise<void> {
    const g = await this.running(uuid);
    const i = g.spec.nics.findIndex((n) => n.mac === mac);
    const nic = g.spec.nics[i];
    if (!nic || nic.kind !== 'public' || !nic.ip) throw new DriverError(`guest ${uuid} has no public NIC ${mac}`, 'not_found');
    const before = new Set(portForwards(nic).map((f) => f.hostPort));
    const after = new Set(portForwards({ ...nic, ports }).map((f) => f.hostPort));
    const hmp = async (line: string) => {
      // HMP answers its errors as text ("could not set up host forwarding rule", "... not found"), not as QMP errors.
      const out = await g.qmp!.execute<string>('human-monitor-command', { 'command-line': line });
      if (typeof out === 'string' && /invalid|not found|could not|error/i.test(out)) throw new DriverError(`${line}: ${out.trim()}`);
    };
    for (const p of before) if (!after.has(p)) await hmp(`hostfwd_remove net${i} tcp:${nic.ip}:${p}`);
    for (const p of after) if (!before.has(p)) await hmp(`hostfwd_add net${i} tcp:${nic.ip}:${p}-:${p}`);
    nic.ports = [...after].sort((a, b) => a - b);
    this.persist(g);
  }

  async setOutboundRules(uuid: string, mac: string, rules: FirewallRule[] | undefined): Promise<void> {
    const g = await this.running(uuid);
    const nic = g.spec.nics.find((n) => n.mac === mac);
    if (!nic || nic.kind !== 'public' || !nic.ip) throw new DriverError(`guest ${uuid} has no public NIC ${mac}`, 'not_found');
    nic.outbound = rules;
    this.persist(g);
  }

  async openVnc(uuid: string, password: string): Promise<{ port: number }> {
    const g = await this.running(uuid);
    // QEMU's VNC authentication uses the first 8 characters of the password; longer ones are truncated by QEMU.
    await g.qmp!.execute('set_password', { protocol: 'vnc', password });
    await g.qmp!.execute('expire_password', { protocol: 'vnc', time: 'never' });
    const vnc = await g.qmp!.execute<{ enabled: boolean; service?: string }>('query-vnc');
    if (!vnc.enabled || !vnc.service) throw new DriverError(`VNC of guest ${uuid} is not enabled`);
    return { port: Number(vnc.service) };
  }

  async closeVnc(uuid: string): Promise<void> {
    const g = this.guestsById.get(uuid);
    if (!g || g.gone || !g.qmp) return;
    // No way to stop QEMU's listener at runtime: make the password unusable instead.
    await g.qmp.execute('expire_password', { protocol: 'vnc', time: 'now' }).catch(() => {});
  }

  onEvent(listener: (e: GuestEvent) => void): void {
    this.events.on('event', listener);
  }

  async close(): Promise<void> {
    await this.ready;
    this.closed = true;
    for (const g of this.guestsById.values()) {
      g.qmp?.removeAllListeners('close');
      g.qmp?.close();
      g.contextStop?.();
      for (const s of g.sockets) s.destroy();
    }
    for (const hub of this.hubs.values()) hub.close();
    this.hubs.clear();
    this.guestsById.clear();
  }
}
