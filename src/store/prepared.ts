import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.ts';

const MARK = '\u0000opensigma-argument-';

type ReadAtOnce = (sql: string, parameters: readonly unknown[]) => unknown[] | undefined;
const readsAtOnce = new WeakMap<Kysely<Database>, ReadAtOnce>();

/**
 * A dialect whose reads can be answered synchronously (SQLite, in process) offers it here for its root Kysely
 * instance: `read` answers a query at once, or undefined when it must take the usual path (a transaction holds the
 * connection). Kysely's path costs several promise rounds and a connection lock, more than the indexed read itself.
 */
export function offerReadsAtOnce(db: Kysely<Database>, read: ReadAtOnce): void {
  readsAtOnce.set(db, read);
}

/**
 * A query built and compiled by Kysely once, then run again and again with new arguments: on the hot reads, building
 * and compiling the query costs several times more than the database's indexed lookup. The builder receives stand-ins
 * for its arguments, so they may only be values (not identifiers, and not the members of an IN list, whose length
 * changes the SQL). Keep one per store (an instance field), since the SQL is the dialect's.
 */
export class Prepared<A extends unknown[], R> {
  private compiled?: CompiledQuery<R>;
  /** for each parameter of the compiled query, the index of the argument it stands for, or -1 for a constant */
  private slots: number[] = [];

  constructor(private readonly build: (db: Kysely<Database>, ...args: A) => Compilable<R>) {}

  async execute(db: Kysely<Database>, ...args: A): Promise<R[]> {
    const compiled = (this.compiled ??= this.compile(db, args.length));
    const parameters = compiled.parameters.map((p, i) => (this.slots[i]! >= 0 ? args[this.slots[i]!] : p));
    const now = readsAtOnce.get(db)?.(compiled.sql, parameters);
    if (now) return now as R[];
    return (await db.executeQuery<R>({ ...compiled, parameters })).rows;
  }

  private compile(db: Kysely<Database>, arity: number): CompiledQuery<R> {
    const standIns = Array.from({ length: arity }, (_, i) => `${MARK}${i}`) as A;
    const compiled = this.build(db, ...standIns).compile();
    this.slots = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(MARK) ? Number(p.slice(MARK.length)) : -1));
    const used = new Set(this.slots);
    for (let i = 0; i < arity; i++) if (!used.has(i)) throw new Error(`prepared query does not use argument ${i}`);
    return compiled;
  }
}
