import fastJson, { type Schema } from 'fast-json-stringify';
import type { Actor } from '../domain/actor.ts';
import { showsRuntime } from '../domain/server-lifecycle.ts';
import type { Decorations } from '../services.ts';
import type { PageKey, Stored } from '../store/documents.ts';
import { Reply } from './http.ts';

const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');

interface Entry {
  version: number;
  status: string;
  runtime: unknown;
  tagged: boolean;
  bytes: Buffer;
}

/**
 * The wire bytes of objects as their owners see them, least recently used dropped past `maxBytes`. An entry holds
 * while its row has the version (which every write of the document bumps), status and runtime it was made from;
 * those come with the row a request reads anyway, so a write through any API node is seen at once.
 */
export class WireCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  fresh(s: Stored<unknown>): Entry | undefined {
    const e = this.entries.get(s.uuid);
    if (!e) return undefined;
    if (!sameRow(e, s) || (showsRuntime(s.status) && e.runtime !== (s.row.runtime ?? null))) {
      this.drop(s.uuid, e);
      return undefined;
    }
    this.entries.delete(s.uuid);
    this.entries.set(s.uuid, e);
    return e;
  }

  /**
   * The entry that answers for an object known only by its page key: one with no runtime to compare, no job, and no
   * tags (so no grantees, which only tags bring, can have appeared since).
   */
  holding(k: PageKey): Entry | undefined {
    const e = this.entries.get(k.uuid);
    return e !== undefined && !e.tagged && !k.busy && !showsRuntime(k.status) && sameRow(e, k) ? e : undefined;
  }

  put(s: Stored<unknown>, tagged: boolean, bytes: Buffer): void {
    if (bytes.length > this.maxBytes) return;
    const old = this.entries.get(s.uuid);
    if (old) this.drop(s.uuid, old);
    this.entries.set(s.uuid, { version: s.version, status: s.status, runtime: showsRuntime(s.status) ? (s.row.runtime ?? null) : null, tagged, bytes });
    this.bytes += bytes.length;
    for (const [uuid, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(uuid, e);
    }
  }

  private drop(uuid: string, e: Entry): void {
    this.entries.delete(uuid);
    this.bytes -= e.bytes.length;
  }
}

/** Whether the row was not written since the entry was made (every write of the document bumps its version). */
const sameRow = (e: Entry, row: { version: number; status: string }) => e.version === row.version && e.status === row.status;

const TAGGED = [true];

/**
 * Answers GETs of one kind of object as bytes: each object rendered and serialised by its route's schema once per
 * change, then reused by every list page and GET that shows it unchanged to its owner. Objects shown with jobs,
 * grantees or to a grantee are rendered afresh, as are requests with `fields=`.
 */
export class WireObjects<T extends { tags: unknown[] }> {
  private readonly serialize: (o: unknown) => string;
  private readonly envelope: (o: unknown) => string;

  constructor(
    itemSchema: unknown,
    envelopeSchema: unknown,
    private readonly render: (s: Stored<T>, deco: Decorations) => unknown,
    private readonly decorate: (
      actor: Actor,
      objs: Array<{ uuid: string; owner: string | null; doc?: { tags?: unknown[] }; busy?: boolean }>,
    ) => Promise<Map<string, Decorations>>,
    private readonly cache: WireCache,
  ) {
    // Callers pass the routes' TypeBox response schemas, which are plain JSON Schema.
    this.serialize = fastJson(itemSchema as Schema);
    this.envelope = fastJson(envelopeSchema as Schema);
  }

  /** `held`: entries taken for objects read without their documents, which must be answered from them. */
  private async many(actor: Actor, list: Stored<T>[], held?: Map<string, Entry>): Promise<Buffer[]> {
    const fresh = list.map((s) => held?.get(s.uuid) ?? (s.owner === actor.user ? this.cache.fresh(s) : undefined));
    // Untagged (so unshared) and, as read with the row, without a job: nothing to decorate, nothing to ask.
    if (fresh.every((e, i) => e && !e.tagged && list[i]!.busy === false)) return fresh.map((e) => e!.bytes);
    // A cached object's tags are known without parsing its document: whether it has any decides the grantees query.
    const deco = await this.decorate(
      actor,
      list.map((s, i) => (fresh[i] ? { uuid: s.uuid, owner: s.owner, busy: s.busy, doc: { tags: fresh[i].tagged ? TAGGED : [] } } : s)),
    );
    return list.map((s, i) => {
      const d = deco.get(s.uuid) ?? {};
      const plain = s.owner === actor.user && !d.jobs?.length && !d.grantees?.length && !d.permissions?.length && d.tags === undefined;
      if (plain && fresh[i]) return fresh[i].bytes;
      const bytes = Buffer.from(this.serialize(this.render(s, d)));
      if (plain) this.cache.put(s, s.doc.tags.length > 0, bytes);
      return bytes;
    });
  }

  async one(actor: Actor, s: Stored<T>): Promise<Reply> {
    const [bytes] = await this.many(actor, [s]);
    return new Reply(200, bytes, JSON_TYPE);
  }

  /**
   * A list page. `read` lists the actor's objects; given `reusable`, it may leave out the documents of the objects it
   * accepts (DocumentTable.listReusing), whose entries are then held for this answer whatever other requests evict.
   */
  async list(
    actor: Actor,
    q: { limit: number; offset: number },
    read: (reusable: ((k: PageKey) => boolean) | null) => Promise<{ total: number; items: Stored<T>[] }>,
  ): Promise<Reply> {
    const held = new Map<string, Entry>();
    const { total, items } = await read(
      this.cache.enabled
        ? (k) => {
            const e = this.cache.holding(k);
            if (e) held.set(k.uuid, e);
            return e !== undefined;
          }
        : null,
    );
    const head = this.envelope({ meta: { limit: q.limit, offset: q.offset, total_count: total }, objects: [] });
    const parts: Buffer[] = [Buffer.from(head.slice(0, head.lastIndexOf('[') + 1))];
    for (const [i, bytes] of (await this.many(actor, items, held)).entries()) {
      if (i > 0) parts.push(COMMA);
      parts.push(bytes);
    }
    parts.push(CLOSE);
    return new Reply(200, Buffer.concat(parts), JSON_TYPE);
  }
}
