import type { Services } from '../services.ts';
import type { ChangeEvent } from '../events.ts';
import type { WireError } from '../errors.ts';
import { ownerRef } from '../domain/refs.ts';
import { spacedMicros } from '../domain/timestamps.ts';

const CATEGORY: Record<string, string> = {
  servers: 'Servers',
  drives: 'Drives',
  ips: 'IPs',
  vlans: 'VLANs',
  tags: 'Tags',
  keypairs: 'Keypairs',
  acls: 'ACLs',
  snapshots: 'Snapshots',
  fwpolicies: 'Firewall policies',
  remotesnapshots: 'Remote snapshots',
  profile: 'Profile',
  subscriptions: 'Subscriptions',
  global_context: 'Context',
};

/** Our event names -> the action names CloudSigma's audit log uses. */
const ACTION: Record<string, string> = {
  created: 'create',
  updated: 'update',
  deleted: 'delete',
  start: 'start_send',
  started: 'boot',
  stop: 'stop_send',
  stopped: 'stop',
  shutdown: 'shutdown_ACPI_send',
  reconciled: 'heal',
  restarted: 'restart',
};

/**
 * The audit log: every change this process publishes (create, update, delete, actions, and what hosts report back)
 * becomes one entry of the owner's log, attributed to the user whose request caused it.
 */
export class AuditLog {
  constructor(private readonly svc: Services) {}

  private readonly inFlight = new Set<Promise<void>>();

  start(): () => void {
    return this.svc.bus.subscribeOwn((e) => this.track(this.record(e)));
  }

  /** Entries being written now; a request that caused them waits for them, so its client reads them next. */
  async settled(): Promise<void> {
    if (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track(write: Promise<void>): void {
    const p = write.catch((err) => this.svc.log.error({ err }, 'writing the audit log')).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async record(e: ChangeEvent): Promise<void> {
    if (!e.owner) return;
    const error = e.error ? { error_message: e.error, error_point: null, error_type: 'backend' as const } : undefined;
    await this.write(e.owner, e.actor ?? e.owner, e.resource_type, e.uuid, e.action, error);
  }

  /**
   * A change the API refused (a wrong state, a bad value): an unsuccessful entry of the actor's own log, with the
   * error the client got. `action` is named as the changes' events are (created, updated, deleted, start...).
   */
  recordRefusal(actor: string, resourceType: string, uuid: string, action: string, error: WireError): void {
    this.track(this.write(actor, actor, resourceType, uuid, action, error));
  }

  private async write(owner: string, actor: string, resourceType: string, uuid: string, action: string, error?: WireError): Promise<void> {
    // Own keys only: a client names the action, and `constructor` or `__proto__` must not find Object's.
    const category = Object.hasOwn(CATEGORY, resourceType) ? CATEGORY[resourceType] : undefined;
    if (!category) return;
    await this.svc.store.auditLog.append({
      owner,
      actor,
      resource_uuid: uuid,
      category,
      action: Object.hasOwn(ACTION, action) ? ACTION[action]! : action,
      details: '',
      success: error ? 0 : 1,
      error_message: error?.error_message ?? '',
      error_point: error?.error_point ?? null,
      error_type: error?.error_type ?? null,
      timestamp: spacedMicros(),
    });
  }

  async list(owner: string, q: { limit: number; offset: number; uuid?: string[]; category?: string[]; action?: string[] }) {
    const { total, items: rows } = await this.svc.store.auditLog.list(owner, q);
    return {
      total,
      items: rows.map((r) => ({
        action: r.action,
        actor: ownerRef(r.actor),
        category: r.category,
        details: r.details,
        error_message: r.error_message,
        error_point: r.error_point,
        error_type: r.error_type,
        success: Boolean(Number(r.success)),
        timestamp: r.timestamp,
        uuid: r.resource_uuid,
      })),
    };
  }
}
