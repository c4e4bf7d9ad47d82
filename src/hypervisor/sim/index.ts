import fs from 'node:fs';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { DriverError, type GuestEvent, type GuestInfo, type GuestSpec, type GuestStats, type HostCapacity, type HypervisorDriver } from '../driver.ts';
import { SimShell } from './shell.ts';
import { SimVncServer } from './vnc.ts';

/**
 * Meta keys that steer a simulated guest. Any client can set them, so error paths can be tested over the wire; on a
 * running server too, where they steer its next stop, shutdown or restart.
 *  - sim_acpi: "ignore"            the guest ignores the ACPI power button
 *  - sim_fail_next: "<op>"        the next <op> (start, stop, shutdown, restart) fails
 *  - sim_hang_next: "<op>"        the next <op> never completes
 */
export const SIM_META = { acpi: 'sim_acpi', failNext: 'sim_fail_next', hangNext: 'sim_hang_next' } as const;

interface SimGuest {
  uuid: string;
  state: 'running' | 'off';
  activeSince: string;
  /** As started; a fault used up on the running guest is removed from its meta here too. */
  spec: GuestSpec;
}

export interface SimOptions {
  hostName: string;
  dataDir: string;
  delayMs: number;
  capacity: HostCapacity;
  /** Address the VNC endpoints listen on (default 127.0.0.1). */
  bindHost?: string;
  /** Test hook: delay before an obedient guest powers off after the ACPI button. */
  acpiDelayMs?: number;
}

/**
 * A deterministic in-process hypervisor. Guests are records with phases that take `delayMs`; their state is kept
 * in a file, so like real guests they outlive a restart of the control plane.
 */
export class SimDriver implements HypervisorDriver {
  readonly kind = 'sim' as const;
  readonly accel = 'none';
  private readonly guestsById = new Map<string, SimGuest>();
  private readonly events = new EventEmitter();
  private readonly stateFile: string;
  private readonly shells = new Map<string, SimShell>();
  private readonly vnc = new Map<string, SimVncServer>();
  private readonly hung = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: SimOptions) {
    const dir = path.join(opts.dataDir, 'sim');
    fs.mkdirSync(dir, { recursive: true });
    this.stateFile = path.join(dir, `${opts.hostName.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    if (fs.existsSync(this.stateFile)) {
      for (const g of JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as SimGuest[]) this.guestsById.set(g.uuid, g);
    }
  }

  capacity(): HostCapacity {
    return this.opts.capacity;
  }

  private persist(): void {
    const tmp = `${this.stateFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify([...this.guestsById.values()]));
    fs.renameSync(tmp, this.stateFile);
  }

  private phase(): Promise<void> {
    return new Promise((r) => setTimeout(r, this.opts.delayMs));
  }

  /**
   * Applies sim_fail_next / sim_hang_next for `op`. The sim remembers nothing of a fault it fired at a guest that
   * does not run: the control plane removes the key from the server (a failure carries it in `usedUp`, a hang is
   * recorded before it hangs), and the next start's meta comes from the server. A running guest's own copy of its
   * meta loses the key here.
   */
  private async fault(uuid: string, meta: Record<string, string>, op: string, running?: SimGuest): Promise<void> {
    for (const [key, kind] of [
      [SIM_META.failNext, 'fail'],
      [SIM_META.hangNext, 'hang'],
    ] as const) {
      if (meta[key] !== op) continue;
      if (running) {
        delete running.spec.meta[key];
        this.persist();
      }
      if (kind === 'fail') throw new DriverError(`simulated failure of ${op}`, 'failed', [key]);
      await this.recordUsedUp?.(uuid, [key]);
      await new Promise<void>(() => {}); // hangs forever, as a stuck hypervisor would
    }
  }

  private recordUsedUp: ((uuid: string, keys: string[]) => Promise<void>) | null = null;

  onUsedUp(record: (uuid: string, keys: string[]) => Promise<void>): void {
    this.recordUsedUp = record;
  }

  async start(spec: GuestSpec): Promise<void> {
    const existing = this.guestsById.get(spec.uuid);
    if (existing?.state === 'running') throw new DriverError(`guest ${spec.uuid} is already running`);
    const used = [...this.guestsById.values()]
      .filter((g) => g.state === 'running' && g.uuid !== spec.uuid)
      .reduce((s, g) => ({ cpu: s.cpu + g.spec.cpu, mem: s.mem + g.spec.mem }), { cpu: 0, mem: 0 });
    if (used.mem + spec.mem > this.opts.capacity.mem || used.cpu + spec.cpu > this.opts.capacity.cpu)
      throw new DriverError('host is out of capacity', 'capacity');
    await this.fault(spec.uuid, spec.meta, 'start');
    await this.phase();
    this.guestsById.set(spec.uuid, { uuid: spec.uuid, state: 'running', activeSince: new Date().toISOString(), spec: { ...spec, meta: { ...spec.meta } } });
    this.persist();
  }

  private running(uuid: string): SimGuest {
    const g = this.guestsById.get(uuid);
    if (!g || g.state !== 'running') throw new DriverError(`guest ${uuid} is not running`, 'not_found');
    return g;
  }

  private off(uuid: string, event?: GuestEvent['type']): void {
    const g = this.guestsById.get(uuid);
    if (!g) return;
    g.state = 'off';
    this.shells.get(uuid)?.destroy();
    this.shells.delete(uuid);
    void this.closeVnc(uuid);
    this.persist();
    if (event && !this.closed) this.events.emit('event', { uuid, type: event } satisfies GuestEvent);
  }

  async powerOff(uuid: string, meta?: Record<string, string>): Promise<void> {
    const g = this.running(uuid);
    await this.fault(uuid, meta ?? g.spec.meta, 'stop', g);
    await this.phase();
    this.off(uuid);
  }

  async pressPowerButton(uuid: string, meta?: Record<string, string>): Promise<void> {
    const g = this.running(uuid);
    const steer = meta ?? g.spec.meta;
    await this.fault(uuid, steer, 'shutdown', g);
    if (steer[SIM_META.acpi] === 'ignore') return;
    const delay = this.opts.acpiDelayMs ?? this.opts.delayMs;
    setTimeout(() => {
      if (this.guestsById.get(uuid)?.state === 'running') this.off(uuid, 'powered_off');
    }, delay).unref();
  }

  async reset(uuid: string, meta?: Record<string, string>): Promise<void> {
    const g = this.running(uuid);
    await this.fault(uuid, meta ?? g.spec.meta, 'restart', g);
    await this.phase();
    g.activeSince = new Date().toISOString();
    this.shells.get(uuid)?.reboot();
    this.persist();
  }

  /** Crash hook: the guest dies as if QEMU were killed. */
  crash(uuid: string): void {
    this.running(uuid);
    this.off(uuid, 'crashed');
  }

  /** Test hook: the guest is gone and no event says so, as when it died while nobody listened. */
  vanish(uuid: string): void {
    this.running(uuid);
    this.off(uuid);
  }

  /** Test hook: the guest powers itself off (as `poweroff` inside it would). */
  guestPowerOff(uuid: string): void {
    this.running(uuid);
    this.off(uuid, 'powered_off');
  }

  async guests(): Promise<GuestInfo[]> {
    return [...this.guestsById.values()]
      .filter((g) => g.state === 'running')
      .map((g) => ({ uuid: g.uuid, state: g.state, activeSince: new Date(g.activeSince) }));
  }

  /** Counters grow with uptime, deterministically: a guest that has run twice as long has moved twice the bytes. */
  async stats(uuid: string): Promise<GuestStats | null> {
    const g = this.guestsById.get(uuid);
    if (!g || g.state !== 'running') return null;
    const secs = Math.max(0, Math.floor((Date.now() - Date.parse(g.activeSince)) / 1000));
    const drives: GuestStats['drives'] = {};
    for (const d of g.spec.drives)
      drives[d.uuid] = {
        bytes_read: 512 + secs * 4096,
        bytes_written: secs * 1024,
        count_flush: Math.floor(secs / 5),
        count_read: 1 + secs,
        count_written: Math.floor(secs / 4),
        total_time_ns_flush: Math.floor(secs / 5) * 100000,
        total_time_ns_read: 606050 + secs * 50000,
        total_time_ns_write: Math.floor(secs / 4) * 80000,
      };
    const nics: GuestStats['nics'] = {};
    for (const n of g.spec.nics)
      nics[n.mac] =
        n.kind === 'none'
          ? { bytes_recv: 0, bytes_sent: 0, packets_recv: 0, packets_sent: 0 }
          : { bytes_recv: secs * 1500, bytes_sent: secs * 600, packets_recv: secs * 3, packets_sent: secs * 2 };
    return { drives, nics };
  }

  async attachSerial(uuid: string): Promise<Duplex> {
    const g = this.running(uuid);
    let shell = this.shells.get(uuid);
    if (!shell) {
      shell = new SimShell(g.spec.name, () => this.guestPowerOff(uuid));
      this.shells.set(uuid, shell);
    }
    return shell.attach();
  }

  async serialHistory(uuid: string, max: number): Promise<Buffer> {
    return this.shells.get(uuid)?.history(max) ?? Buffer.alloc(0);
  }

  async openVnc(uuid: string, password: string): Promise<{ port: number }> {
    const g = this.running(uuid);
    // Every open gives a new endpoint, as CloudSigma's vnc_url changes on each open.
    await this.closeVnc(uuid);
    const srv = new SimVncServer(g.spec.name, password, this.opts.bindHost);
    this.vnc.set(uuid, srv);
    return { port: await srv.listen() };
  }

  async closeVnc(uuid: string): Promise<void> {
    const srv = this.vnc.get(uuid);
    this.vnc.delete(uuid);
    await srv?.close();
  }

  onEvent(listener: (e: GuestEvent) => void): void {
    this.events.on('event', listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.shells.values()) s.destroy();
    for (const uuid of [...this.vnc.keys()]) await this.closeVnc(uuid);
    void this.hung;
  }
}
