import type { Duplex } from 'node:stream';
import type { FirewallRule } from '../domain/firewall.ts';
/** TCP ports of a guest reachable at its public NIC's address when nothing else says which (SSH, HTTP, HTTPS). */
export const DEFAULT_FORWARDED_PORTS: readonly number[] = [22, 80, 443];

/** What a guest asks its context channel (ttyS1), and the line it is answered with. */
export type ContextRequest = string;
export type ContextReply = string;

/** Everything a driver needs to run one guest, resolved by the control plane from the server definition. */
export interface GuestSpec {
  uuid: string;
  name: string;
  cpu: number;
  mem: number;
  smp: number;
  cpu_type: string;
  cpu_model: string | null;
  cpus_instead_of_cores: boolean;
  enable_numa: boolean;
  hv_relaxed: boolean;
  hv_tsc: boolean;
  vnc_password: string;
  context: boolean;
  meta: Record<string, string>;
  drives: GuestDrive[];
  nics: GuestNic[];
}

export interface GuestDrive {
  uuid: string;
  device: 'ide' | 'virtio' | 'scsi';
  dev_channel: string;
  boot_order: number | null;
  media: 'disk' | 'cdrom';
  /** Image file on this host, or null when the drive has no bytes (sim). */
  path: string | null;
  format: 'raw' | 'qcow2';
}

export interface GuestNic {
  mac: string;
  model: string;
  boot_order: number | null;
  /** public NICs get `ip` by DHCP; private ones join `vlan`; none have neither. */
  kind: 'public' | 'private' | 'none';
  ip: string | null;
  vlan: string | null;
  /** Public NICs: the guest's TCP ports reachable at `ip` (default DEFAULT_FORWARDED_PORTS: 22, 80, 443). */
  ports?: number[];
  /**
   * Public NICs: the rules of the NIC's firewall policy, deciding (first match, unmatched accepted) what the guest
   * sends that the driver carries; none means everything.
   */
  outbound?: FirewallRule[];
}

export type PowerState = 'running' | 'off';

export interface GuestInfo {
  uuid: string;
  state: PowerState;
  activeSince: Date;
}

// Type aliases, not interfaces: only an alias is assignable to the runtime's Record<string, number> counters.
export type DriveIo = {
  bytes_read: number;
  bytes_written: number;
  count_flush: number;
  count_read: number;
  count_written: number;
  total_time_ns_flush: number;
  total_time_ns_read: number;
  total_time_ns_write: number;
};

export type NicIo = {
  bytes_recv: number;
  bytes_sent: number;
  packets_recv: number;
  packets_sent: number;
};

export interface GuestStats {
  drives: Record<string, DriveIo>;
  nics: Record<string, NicIo>;
}

/** Why a guest stopped without being asked to. */
export interface GuestEvent {
  uuid: string;
  type: 'powered_off' | 'crashed';
}

/**
 * Host-side answers to the guest's server-context requests (ttyS1): `request` is what the guest wrote between `<` and
 * `>` (the path; surrounding newlines optional), the answer the complete reply to write back, ending in `\n` + EOT.
 * Implemented by `contextReply` in src/domain/context.ts.
 */
export type ContextProvider = (serverUuid: string, request: ContextRequest) => Promise<ContextReply>;

export interface HostCapacity {
  cpu: number;
  mem: number;
}

/**
 * A hypervisor on one host. Every operation is asynchronous and resolves when the host has done it; the driver
 * reports power state and unrequested changes (a guest powering itself off, a crash) through `onEvent`.
 */
export interface HypervisorDriver {
  readonly kind: 'sim' | 'qemu';
  /** Which acceleration guests get (kvm, tcg, none), shown in capabilities and logs. */
  readonly accel: string;
  capacity(): HostCapacity;
  /** Boots the guest; resolves when it runs. Rejects (leaving nothing behind) if it cannot. */
  start(spec: GuestSpec): Promise<void>;
  /**
   * Pulls the power cord; resolves when the guest is off. `meta` (here and below) is the server's meta as it is now,
   * for drivers steered by it: a running server's meta may have changed since its start.
   */
  powerOff(uuid: string, meta?: Record<string, string>): Promise<void>;
  /** One press of the ACPI power button. Whether the guest obeys shows later as a powered_off event. */
  pressPowerButton(uuid: string, meta?: Record<string, string>): Promise<void>;
  /** Hard reset: the guest reboots in place. */
  reset(uuid: string, meta?: Record<string, string>): Promise<void>;
  /** Every guest the host has, running or not yet cleaned up. */
  guests(): Promise<GuestInfo[]>;
  stats(uuid: string): Promise<GuestStats | null>;
  /** A byte stream joined to the guest's first serial port (ttyS0). */
  attachSerial(uuid: string): Promise<Duplex>;
  /** The last of what the guest wrote on ttyS0 (at most `max` bytes), for a console client that asks to see it first. */
  serialHistory?(uuid: string, max: number): Promise<Buffer>;
  /** Where the guest's display is served (RFB with VNC authentication, password = vnc_password). */
  openVnc(uuid: string, password: string): Promise<{ port: number }>;
  closeVnc(uuid: string): Promise<void>;
  /**
   * Changes which TCP ports of a running guest's public NIC are reachable at its address (a firewall policy was
   * edited or attached), without a restart. Drivers whose guests model no connections need not implement it.
   */
  setPortForwards?(uuid: string, mac: string, ports: number[]): Promise<void>;
  /** Replaces the rules that decide what a running guest's public NIC may send (GuestNic.outbound), without a restart. */
  setOutboundRules?(uuid: string, mac: string, rules: FirewallRule[] | undefined): Promise<void>;
  onEvent(listener: (e: GuestEvent) => void): void;
  /**
   * For drivers that obey one-shot instructions in a guest's meta (the sim's sim_hang_next) whose effect leaves no
   * failure to record: before acting on one, the driver calls `record` and waits for it, and the control plane
   * removes the keys from the server, so the instruction acts once even across a restart.
   */
  onUsedUp?(record: (uuid: string, keys: string[]) => Promise<void>): void;
  /** Releases the driver's own resources. Guests keep running where the hypervisor allows it. */
  close(): Promise<void>;
}

export class DriverError extends Error {
  constructor(
    message: string,
    readonly code: 'capacity' | 'failed' | 'not_found' | 'invalid' = 'failed',
    /** Meta keys of one-shot instructions this failure used up (the sim's sim_fail_next): the control plane removes
     * them from the server in the write that records the failure, so they act once, across restarts too. */
    readonly usedUp: string[] = [],
  ) {
    super(message);
  }
}

/** The one-shot meta keys an error used up (none unless it is a DriverError that says so). */
export const usedUpBy = (e: unknown): string[] => (e instanceof DriverError ? e.usedUp : []);
