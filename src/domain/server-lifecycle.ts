/**
 * The server lifecycle: every status a server can be in, every event that moves it, and what each status means for
 * the rest of the system. Every status change in opensigma is one row of EVENTS; the sets other modules need
 * (what holds capacity, what an agent must look after, what shows its runtime) are read from STATUSES, never
 * written out again.
 */

export type ServerStatus = 'stopped' | 'starting' | 'running' | 'stopping' | 'paused' | 'unavailable';

/** Host operations an event queues for the server's agent. */
export type OperationKind = 'start' | 'stop' | 'shutdown' | 'restart' | 'open_vnc' | 'close_vnc' | 'open_console' | 'close_console';

export interface StatusInfo {
  /** CloudSigma's internal name for it, which its error messages use ("Cannot start guest in state \"started\""). */
  internal: string;
  /** a guest may be on a host: the host's loss makes the server unavailable */
  onHost: boolean;
  /** the agent of the server's host must look after it (reconcile it with what its driver runs) */
  tended: boolean;
  /** counted against its host's CPU and memory by placement */
  holdsCapacity: boolean;
  /** the API shows its runtime (addresses, I/O counters) */
  showsRuntime: boolean;
  /** counts as in use for /currentusage/ */
  inUse: boolean;
  /** a passing state: some event (a driver outcome, reconciliation, a timeout) always leads out of it */
  transitional: boolean;
}

export const STATUSES: Record<ServerStatus, StatusInfo> = {
  stopped: { internal: 'stopped', onHost: false, tended: false, holdsCapacity: false, showsRuntime: false, inUse: false, transitional: false },
  starting: { internal: 'starting', onHost: true, tended: true, holdsCapacity: true, showsRuntime: false, inUse: true, transitional: true },
  running: { internal: 'started', onHost: true, tended: true, holdsCapacity: true, showsRuntime: true, inUse: true, transitional: false },
  stopping: { internal: 'stopping', onHost: true, tended: true, holdsCapacity: true, showsRuntime: true, inUse: true, transitional: true },
  // Paused is CloudSigma's and in the schema; nothing here pauses a guest, but its usage is still billed.
  paused: { internal: 'paused', onHost: false, tended: false, holdsCapacity: false, showsRuntime: false, inUse: true, transitional: false },
  // Its agent went away: the guest may still be there, so its capacity stays taken until the agent says otherwise.
  unavailable: { internal: 'unavailable', onHost: false, tended: true, holdsCapacity: true, showsRuntime: false, inUse: false, transitional: false },
};

export const ALL_STATUSES = Object.keys(STATUSES) as ServerStatus[];
const where = (p: (i: StatusInfo) => boolean) => ALL_STATUSES.filter((s) => p(STATUSES[s]));
export const ON_HOST: readonly string[] = where((i) => i.onHost);
export const TENDED: readonly string[] = where((i) => i.tended);
export const HOLDS_CAPACITY: readonly string[] = where((i) => i.holdsCapacity);
export const IN_USE: readonly string[] = where((i) => i.inUse);

export const showsRuntime = (status: string): boolean => STATUSES[status as ServerStatus]?.showsRuntime ?? false;
export const internalName = (status: string): string => STATUSES[status as ServerStatus]?.internal ?? status;

/** Who brings an event about. */
export type EventSource = 'api' | 'driver' | 'reconciliation' | 'timeout' | 'host-watch';

export interface EventRule {
  source: EventSource;
  from: readonly ServerStatus[];
  /** the next status; absent: the status stays as it is (restart, consoles) */
  to?: ServerStatus;
  /** queued for the host's agent in the same transaction */
  op?: OperationKind;
  /** the server leaves its host: its host and runtime columns are cleared */
  leavesHost?: boolean;
  /** for API events: the state the refusal says the server should be in */
  expected?: string;
}

const RUNNING_LIKE = "['started', 'running_legacy']";

export const EVENTS = {
  // API actions
  start: { source: 'api', from: ['stopped'], to: 'starting', op: 'start', expected: 'stopped' },
  // A hard stop also ends a start that hangs (docs/decisions.md).
  stop: { source: 'api', from: ['running', 'stopping', 'starting'], to: 'stopping', op: 'stop', expected: RUNNING_LIKE },
  shutdown: { source: 'api', from: ['running'], to: 'stopping', op: 'shutdown', expected: RUNNING_LIKE },
  restart: { source: 'api', from: ['running'], op: 'restart', expected: RUNNING_LIKE },
  open_console: { source: 'api', from: ['running'], op: 'open_console', expected: RUNNING_LIKE },
  open_vnc: { source: 'api', from: ['running'], op: 'open_vnc', expected: RUNNING_LIKE },
  clone: { source: 'api', from: ['stopped', 'running'], expected: 'stopped' },
  delete: { source: 'api', from: ['stopped'], expected: 'stopped' },
  // driver outcomes
  booted: { source: 'driver', from: ['starting'], to: 'running' },
  boot_failed: { source: 'driver', from: ['starting'], to: 'stopped', leavesHost: true },
  powered_off: { source: 'driver', from: ['starting', 'running', 'stopping', 'unavailable'], to: 'stopped', leavesHost: true },
  stop_failed: { source: 'driver', from: ['stopping'], to: 'running' },
  // The guest ignored the ACPI button for the whole timeout: it is still running.
  shutdown_timeout: { source: 'timeout', from: ['stopping'], to: 'running' },
  // reconciliation findings
  found_running: { source: 'reconciliation', from: ['starting', 'running', 'unavailable', 'stopping'], to: 'running' },
  found_no_guest: { source: 'reconciliation', from: ['starting', 'running', 'stopping', 'unavailable'], to: 'stopped', leavesHost: true },
  // a host's agent stopped heartbeating
  host_lost: { source: 'host-watch', from: ['starting', 'running', 'stopping'], to: 'unavailable' },
  // a start queued for a host that is down and that no agent claimed: nothing was booted
  start_not_claimed: { source: 'host-watch', from: ['starting'], to: 'stopped', leavesHost: true },
  // the host is served no more (the node's configuration changed, or the operator removed it): nothing runs there
  host_retired: { source: 'host-watch', from: ['starting', 'running', 'stopping', 'unavailable'], to: 'stopped', leavesHost: true },
} as const satisfies Record<string, EventRule>;

export type ServerEvent = keyof typeof EVENTS;

export const rule = (event: ServerEvent): EventRule => EVENTS[event];

/** Whether `event` may happen to a server in `status`. */
export const allows = (event: ServerEvent, status: string): boolean => (EVENTS[event].from as readonly string[]).includes(status);

/** The refusal of an API event in a status that does not allow it, worded as CloudSigma words it. */
export function refusalMessage(event: ServerEvent, status: string): string {
  const expected = rule(event).expected ?? 'stopped';
  if (event === 'delete') return `Cannot delete server in state "${status}". Server should be in state "${expected}"`;
  return `Cannot ${event} guest in state "${internalName(status)}". Guest should be in state "${expected}"`;
}

/** The status after `event`, or null when it does not apply to `status`. */
export function next(event: ServerEvent, status: string): ServerStatus | null {
  if (!allows(event, status)) return null;
  const r = rule(event);
  return r.to ?? (status as ServerStatus);
}
