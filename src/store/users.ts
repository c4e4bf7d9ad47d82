import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { Db } from './schema.ts';
import { randomBytes, randomUuid } from '../domain/random.ts';
import type { Dialect } from './dialect/index.ts';

const scrypt = promisify(crypto.scrypt) as (pw: string, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;
const SCRYPT = { N: 16384, r: 8, p: 1 };

export interface User {
  uuid: string;
  email: string;
  data: Record<string, unknown>;
}

/** scrypt with a random salt: slow enough to make stolen hashes expensive. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { ...SCRYPT, N: Number(n) });
  return crypto.timingSafeEqual(expected, got);
}

export const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

const CREDENTIALS_CHANNEL = 'opensigma_credentials';
/** Hex characters of a token's hash that name it in `opensigma token list` and `revoke`. */
export const TOKEN_ID_LENGTH = 12;

export class UserRepo {
  /** Bumped whenever a password change is seen, here or in another process (see credentialsGeneration). */
  private generation = 0;
  private changesSeen: number | null = null;
  private lastExternalWrites: number | null = null;
  private watching: Promise<void> | null = null;
  private watched = false;

  constructor(private readonly dialect: Dialect) {}

  private get db() {
    return this.dialect.db;
  }

  async create(email: string, password: string): Promise<User> {
    const password_hash = await hashPassword(password);
    const lower = email.toLowerCase();
    // An address already granted something (see pendingGrantee) keeps the uuid those grants name.
    const uuid = await this.db.transaction().execute(async (trx) => {
      const pending = await trx.selectFrom('pending_grantees').select('uuid').where('email', '=', lower).executeTakeFirst();
      const uuid = pending ? String(pending.uuid) : randomUuid();
      await trx.insertInto('users').values({ uuid, email: lower, password_hash, data: '{}', created_at: new Date().toISOString() }).execute();
      if (pending) await trx.deleteFrom('pending_grantees').where('email', '=', lower).execute();
      return uuid;
    });
    return { uuid, email: lower, data: {} };
  }

  /**
   * The grantee an ACL names by email: the user with that address, or else the address's pending grantee, made on
   * first use. Both give a uuid that stays the same from one ACL to the next, so the answer does not tell whether
   * the address has an account.
   */
  async granteeByEmail(trx: Db, email: string): Promise<{ uuid: string; email: string }> {
    const lower = email.toLowerCase();
    const user = await trx.selectFrom('users').select(['uuid', 'email']).where('email', '=', lower).executeTakeFirst();
    if (user) return { uuid: String(user.uuid), email: String(user.email) };
    await trx
      .insertInto('pending_grantees')
      .values({ email: lower, uuid: randomUuid(), created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('email').doNothing())
      .execute();
    const pending = await trx.selectFrom('pending_grantees').select(['uuid', 'email']).where('email', '=', lower).executeTakeFirstOrThrow();
    return { uuid: String(pending.uuid), email: String(pending.email) };
  }

  /** The grantee an ACL names by uuid: a user, or an address's pending grantee; undefined for neither. */
  async granteeByUuid(trx: Db, uuid: string): Promise<{ uuid: string; email: string } | undefined> {
    const lower = uuid.toLowerCase();
    const row =
      (await trx.selectFrom('users').select(['uuid', 'email']).where('uuid', '=', lower).executeTakeFirst()) ??
      (await trx.selectFrom('pending_grantees').select(['uuid', 'email']).where('uuid', '=', lower).executeTakeFirst());
    return row ? { uuid: String(row.uuid), email: String(row.email) } : undefined;
  }

  /**
   * Sets a user's password and ends their cookie sessions (API tokens stay), in one transaction that also tells every
   * API node to stop trusting the credentials it cached. False when there is no such user.
   */
  async setPassword(email: string, password: string): Promise<boolean> {
    const hash = await hashPassword(password);
    const changed = await this.db.transaction().execute(async (trx) => {
      const row = await trx.updateTable('users').set({ password_hash: hash }).where('email', '=', email.toLowerCase()).returning('uuid').executeTakeFirst();
      if (!row) return false;
      await trx.deleteFrom('tokens').where('user_uuid', '=', row.uuid).where('kind', 'in', ['session', 'async']).execute();
      await trx
        .updateTable('credential_changes')
        .set((eb) => ({ changes: eb('changes', '+', 1) }))
        .where('id', '=', 1)
        .execute();
      await this.dialect.notifyIn(trx, CREDENTIALS_CHANNEL, '');
      return true;
    });
    if (changed) this.generation++;
    return changed;
  }

  /**
   * A number that changes whenever any password changed, in this process or another (a CLI command on SQLite, any
   * node on PostgreSQL), since it was last read: what cached credentials are checked against. Costs no query unless
   * another process wrote: PostgreSQL nodes hear of changes by notification, SQLite asks whether another
   * connection committed and only then reads the counter.
   */
  async credentialsGeneration(): Promise<number> {
    this.watching ??= this.watchCredentials().catch((e: unknown) => {
      this.watching = null;
      this.watched = false;
      throw e;
    });
    await this.watching;
    const external = this.dialect.externalWrites?.();
    if (external !== undefined && external !== this.lastExternalWrites) {
      this.lastExternalWrites = external;
      const row = await this.db.selectFrom('credential_changes').select('changes').where('id', '=', 1).executeTakeFirst();
      const changes = Number(row?.changes ?? 0);
      if (changes !== this.changesSeen) {
        this.changesSeen = changes;
        this.generation++;
      }
    }
    return this.generation;
  }

  /**
   * credentialsGeneration() when it can be told without a query or a wait (nothing was written by another process
   * since the last look); undefined otherwise, and the caller asks credentialsGeneration().
   */
  credentialsGenerationNow(): number | undefined {
    if (!this.watched) return undefined;
    const external = this.dialect.externalWrites?.();
    return external === undefined || external === this.lastExternalWrites ? this.generation : undefined;
  }

  private async watchCredentials(): Promise<void> {
    // A lost listening connection may have missed a change: distrust everything cached before it.
    const bump = () => void this.generation++;
    await this.dialect.listen(CREDENTIALS_CHANNEL, bump, bump);
    this.watched = true;
  }

  async byEmail(email: string): Promise<(User & { password_hash: string }) | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
    return row ? { uuid: row.uuid, email: row.email, password_hash: row.password_hash, data: JSON.parse(row.data) } : undefined;
  }

  async byUuid(uuid: string, trx: Db = this.db): Promise<(User & { created_at: string }) | undefined> {
    const row = await trx.selectFrom('users').select(['uuid', 'email', 'data', 'created_at']).where('uuid', '=', uuid).executeTakeFirst();
    return row ? { uuid: row.uuid, email: row.email, data: JSON.parse(row.data), created_at: row.created_at } : undefined;
  }

  /** Rewrites a user's data with `edit`'s answer, read and written in `trx` (a missing user's data reads as {}). */
  async editData(uuid: string, edit: (data: Record<string, unknown>) => Record<string, unknown>, trx: Db): Promise<void> {
    const row = await trx.selectFrom('users').select('data').where('uuid', '=', uuid).executeTakeFirst();
    await trx
      .updateTable('users')
      .set({ data: JSON.stringify(edit(JSON.parse(row?.data ?? '{}'))) })
      .where('uuid', '=', uuid)
      .execute();
  }

  async setData(uuid: string, data: Record<string, unknown>): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ data: JSON.stringify(data) })
      .where('uuid', '=', uuid)
      .execute();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Issues a token; only its hash is stored. */
  async issueToken(userUuid: string, kind: 'api' | 'session' | 'async', ttlSeconds: number | null): Promise<{ token: string; csrf: string }> {
    const token = randomBytes(24, 'token').toString('base64url');
    const csrf = randomBytes(24, 'token').toString('base64url');
    await this.db
      .insertInto('tokens')
      .values({
        token_hash: sha256(token),
        user_uuid: userUuid,
        kind,
        csrf,
        expires_at: ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000).toISOString(),
        created_at: new Date().toISOString(),
      })
      .execute();
    return { token, csrf };
  }

  async resolveToken(token: string, kind: 'api' | 'session' | 'async'): Promise<{ user: string; csrf: string | null } | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('token_hash', '=', sha256(token)).where('kind', '=', kind).executeTakeFirst();
    if (!row) return undefined;
    if (row.expires_at && Date.parse(row.expires_at) < Date.now()) return undefined;
    return { user: row.user_uuid, csrf: row.csrf };
  }

  /** A user's tokens, newest first, each named by a prefix of its hash (the token itself is never stored). */
  async listTokens(userUuid: string): Promise<Array<{ id: string; kind: string; created_at: string; expires_at: string | null }>> {
    const rows = await this.db
      .selectFrom('tokens')
      .select(['token_hash', 'kind', 'created_at', 'expires_at'])
      .where('user_uuid', '=', userUuid)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({ id: String(r.token_hash).slice(0, TOKEN_ID_LENGTH), kind: r.kind, created_at: r.created_at, expires_at: r.expires_at }));
  }

  /**
   * Revokes the one token whose id (see listTokens) is given. Bearer tokens and sessions are looked up on every
   * request, never cached, so the next request with it fails on every API node. 'ambiguous' if the id names several.
   */
  async revokeTokenById(id: string): Promise<'revoked' | 'none' | 'ambiguous'> {
    if (!/^[0-9a-f]{8,64}$/.test(id)) return 'none';
    return this.db.transaction().execute(async (trx) => {
      const rows = await trx.selectFrom('tokens').select('token_hash').where('token_hash', 'like', `${id}%`).limit(2).execute();
      if (rows.length !== 1) return rows.length ? 'ambiguous' : 'none';
      await trx.deleteFrom('tokens').where('token_hash', '=', rows[0]!.token_hash).execute();
      return 'revoked';
    });
  }

  /** Revokes every token of a user: API tokens, cookie sessions and websocket tokens. How many there were. */
  async revokeAllTokens(userUuid: string): Promise<number> {
    const r = await this.db.deleteFrom('tokens').where('user_uuid', '=', userUuid).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async revokeToken(token: string): Promise<void> {
    await this.db.deleteFrom('tokens').where('token_hash', '=', sha256(token)).execute();
  }
}
