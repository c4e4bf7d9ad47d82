import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import { OPS_CHANNEL, type Operation, type OperationKind } from '../store/operations.ts';

/** Operations that decide a server's power state; the latest to finish wins over older unfinished ones. */
const POWER_OPS: OperationKind[] = ['start', 'stop', 'shutdown', 'restart'];
/** How often an agent looks for operations claimed in its name that it never received. */
const LOST_CLAIM_SCAN_MS = 2000;
/** Interrupted power operations are resumed after a restart this many times, then given up to reconciliation. */
const MAX_ATTEMPTS = 3;
/** How often the queue is looked at when no notification came (one may be lost, or the dialect has none). */
const POLL_MS = 500;

/**
 * Claims the operations queued for this node's hosts and runs each through `perform`, recording its outcome even
 * across a restart of the database: no operation this agent claimed stays running with nobody running it.
 */
export class OperationWorker {
  private running = false;
  private polling = false;
  private pokedAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** Operations this process has started executing (a claimed operation missing here was lost on its way). */
  private launched = new Set<number>();
  private lastLostScan = 0;

  constructor(
    private readonly store: Store,
    private readonly agentId: string,
    private readonly hostNames: string[],
    private readonly log: Logger,
    private readonly perform: (op: Operation) => Promise<Record<string, unknown> | void>,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts claiming: on the queue's notification for one of these hosts, and on a timer. */
  async start(): Promise<void> {
    this.running = true;
    // The payload names the host whose queue grew (empty: any host).
    await this.store.dialect.listen(OPS_CHANNEL, (host) => {
      if (!host || this.hostNames.includes(host)) this.poke();
    });
    this.timer = setInterval(() => this.poke(), POLL_MS);
    this.timer.unref();
  }

  /** Claims nothing more; operations already running finish, but stop retrying once the database is gone. */
  stop(): void {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** New operations are waiting: claim them now rather than at the next poll. */
  poke(): void {
    if (!this.running) return;
    if (this.polling) {
      // The running poll may already have looked: look once more when it ends, not at the next timer tick.
      this.pokedAgain = true;
      return;
    }
    this.polling = true;
    this.pokedAgain = false;
    void this.pollOnce()
      .catch((e) => this.log.error(e, 'claiming operations'))
      .finally(() => {
        this.polling = false;
        if (this.pokedAgain) this.poke();
      });
  }

  /**
   * Operations claimed before this host's agent died. A power operation was acknowledged to its caller, so it is
   * resumed (its steps ask the driver first, so repeating one is safe); the rest fail, and reconciliation then
   * makes the server agree with what the driver runs.
   */
  async recoverUnfinished(): Promise<void> {
    const ops = await this.store.operations.unfinished(this.hostNames);
    for (const op of ops) {
      if (['start', 'stop', 'shutdown'].includes(op.kind) && op.attempts < MAX_ATTEMPTS) {
        this.log.info({ op: op.id, kind: op.kind, server: op.server_uuid }, 'resuming an interrupted operation');
        await this.store.operations.requeue(op.id);
      } else await this.store.operations.finish(op.id, 'failed', 'interrupted by a restart of the compute agent');
    }
  }

  private async pollOnce(): Promise<void> {
    if (Date.now() - this.lastLostScan >= LOST_CLAIM_SCAN_MS) {
      this.lastLostScan = Date.now();
      await this.runLostClaims();
    }
    for (;;) {
      const ops = await this.store.operations.claim(this.hostNames, this.agentId);
      if (ops.length === 0) return;
      for (const op of ops) this.launch(op);
    }
  }

  private launch(op: Operation): void {
    this.launched.add(op.id);
    const p = this.execute(op).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /**
   * A claim commits in the database before its answer reaches the agent; when the connection dies in between (a
   * database restart), the operations stay running under this agent's name and nobody runs them. Runs those.
   * Called between claims, so every operation this agent claimed is in `launched` or lost.
   */
  private async runLostClaims(): Promise<void> {
    const mine = await this.store.operations.claimedBy(this.agentId, this.hostNames);
    for (const op of mine) {
      if (this.launched.has(op.id)) continue;
      this.log.warn({ op: op.id, kind: op.kind, server: op.server_uuid }, 'running an operation whose claim was lost');
      this.launch(op);
    }
    // An operation launched earlier and not running now has finished for good: forget it.
    this.launched = new Set(mine.map((o) => o.id));
  }

  private async execute(op: Operation): Promise<void> {
    const log = this.log.child({ op: op.id, kind: op.kind, server: op.server_uuid });
    let outcome: { state: 'done' | 'failed'; error: string | null; result: Record<string, unknown> | null };
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        outcome = { state: 'done', error: null, result: (await this.perform(op)) ?? null };
        break;
      } catch (e) {
        // The database went away mid-way (a restart): the operation was acknowledged, so do it again once the
        // database is back (its steps ask the driver first, so repeating one is safe) rather than fail it.
        if (this.running && this.store.dialect.isConnectionLoss(e)) {
          log.warn({ err: (e as Error).message }, 'database connection lost during an operation; trying again');
          await new Promise((r) => setTimeout(r, delay));
          continue;
        }
        log.warn({ err: (e as Error).message }, 'operation failed');
        outcome = { state: 'failed', error: (e as Error).message, result: null };
        break;
      }
    }
    // The database may be restarting: keep trying, so no claimed operation stays running forever.
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        // A hung older power operation (a start that never returned) must not keep reconciliation away from the
        // server: the outcome of this one supersedes it.
        const supersede = POWER_OPS.includes(op.kind) ? { server: op.server_uuid, kinds: POWER_OPS } : undefined;
        await this.store.operations.finish(op.id, outcome.state, outcome.error, outcome.result, undefined, supersede);
        break;
      } catch (e) {
        if (!this.running) return;
        log.warn({ err: (e as Error).message }, 'recording the outcome of an operation; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
