/**
 * Slows down password guessing per source: the first few wrong passwords cost nothing, each one after that makes
 * the next attempt wait twice as long, and past a limit the source is refused outright for a while. Attempts from
 * one source are answered one after another, each counted as wrong from the moment it is admitted, so opening many
 * connections at once buys an attacker nothing. A right
 * password clears the record. Time is passed in, so the rule is the same in tests and in the consoles.
 */
export interface ThrottleRule {
  /** wrong passwords a source may give before any delay */
  free: number;
  /** delay after the first wrong password past `free`; it doubles with each further one */
  baseDelayMs: number;
  maxDelayMs: number;
  /** wrong passwords after which the source is refused for `lockMs` */
  lockAfter: number;
  lockMs: number;
  /** a source that stayed quiet this long starts afresh */
  forgetMs: number;
}

export const CONSOLE_THROTTLE: ThrottleRule = { free: 3, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfter: 10, lockMs: 5 * 60_000, forgetMs: 15 * 60_000 };

interface Record_ {
  failures: number;
  /** when the next attempt may be answered */
  next: number;
  lockedUntil: number;
  last: number;
}

export type Admission = { ok: true; waitMs: number } | { ok: false; retryAfterMs: number };

export class GuessThrottle {
  private readonly sources = new Map<string, Record_>();

  constructor(private readonly rule: ThrottleRule = CONSOLE_THROTTLE) {}

  /**
   * An attempt from `source` at `now`: refused while the source is locked out, else how long to wait before its
   * password may be checked. The wait reserves its turn, so parallel attempts queue behind each other.
   */
  admit(source: string, now: number): Admission {
    const r = this.record(source, now);
    if (r.lockedUntil > now) return { ok: false, retryAfterMs: r.lockedUntil - now };
    // A lock-out that ended leaves one more try before the next.
    if (r.lockedUntil) [r.lockedUntil, r.failures] = [0, this.rule.lockAfter - 1];
    // Every admitted attempt counts as wrong until it proves right, so attempts sent at once are spaced as if each
    // had failed, and no more than lockAfter of them are ever admitted.
    if (r.failures >= this.rule.lockAfter) return { ok: false, retryAfterMs: Math.max(1000, r.next - now) };
    const at = Math.max(now, r.next);
    r.failures++;
    r.next = at + this.delayAfter(r.failures);
    return { ok: true, waitMs: at - now };
  }

  /** The password was wrong (the attempt was already counted when admitted). */
  fail(source: string, now: number): void {
    const r = this.record(source, now);
    r.last = now;
    r.next = Math.max(r.next, now + this.delayAfter(r.failures));
    if (r.failures >= this.rule.lockAfter) r.lockedUntil = now + this.rule.lockMs;
  }

  /** The password was right: the source starts afresh. */
  succeed(source: string): void {
    this.sources.delete(source);
  }

  private delayAfter(failures: number): number {
    if (failures < this.rule.free) return 0;
    return Math.min(this.rule.maxDelayMs, this.rule.baseDelayMs * 2 ** (failures - this.rule.free));
  }

  private record(source: string, now: number): Record_ {
    let r = this.sources.get(source);
    if (r && now - r.last > this.rule.forgetMs && r.lockedUntil <= now) r = undefined;
    if (!r) {
      r = { failures: 0, next: now, lockedUntil: 0, last: now };
      this.sources.set(source, r);
      // Bounded memory: the oldest sources go first when a flood of addresses comes in.
      if (this.sources.size > 10_000) this.sources.delete(this.sources.keys().next().value!);
    }
    return r;
  }
}
