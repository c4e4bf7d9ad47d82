import { EventEmitter } from 'node:events';
import type { Dialect } from './store/dialect/index.ts';

/** A change to a resource, as websocket clients receive it. */
export interface ChangeEvent {
  resource_type: string;
  resource_uri: string;
  uuid: string;
  owner: string | null;
  /** What happened, for logs and metrics. */
  action: string;
  /** The user whose request made the change, when not the owner (the audit log's actor). */
  actor?: string;
  /** Why it failed, when the change is a failure (a start that did not boot): clients and the audit log show it. */
  error?: string;
}

const CHANNEL = 'opensigma_events';

/** Delivers changes to listeners in this process and, through the database, in every other API node. */
export class EventBus {
  private readonly local = new EventEmitter();
  private readonly nodeId = Math.random().toString(36).slice(2);

  constructor(private readonly dialect: Dialect) {
    this.local.setMaxListeners(0);
  }

  async start(): Promise<void> {
    await this.dialect.listen(CHANNEL, (payload) => {
      const msg = JSON.parse(payload) as { from: string; event: ChangeEvent };
      if (msg.from !== this.nodeId) this.local.emit('change', msg.event);
    });
  }

  publish(event: ChangeEvent): void {
    this.local.emit('change', event);
    this.local.emit('published', event);
    void this.dialect.notify(CHANNEL, JSON.stringify({ from: this.nodeId, event })).catch(() => {});
  }

  /** Only the changes made by this process: for records that one node must write once (the audit log). */
  subscribeOwn(listener: (e: ChangeEvent) => void): () => void {
    this.local.on('published', listener);
    return () => this.local.off('published', listener);
  }

  subscribe(listener: (e: ChangeEvent) => void): () => void {
    this.local.on('change', listener);
    return () => this.local.off('change', listener);
  }
}
