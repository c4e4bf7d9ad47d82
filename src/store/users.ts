import crypto from 'node:crypto';
import { promisify } from 'node:util';
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

export class UserRepo {
  constructor(private readonly dialect: Dialect) {}

  private get db() {
    return this.dialect.db;
  }

  async create(email: string, password: string): Promise<User> {
    const uuid = crypto.randomUUID();
    await this.db
      .insertInto('users')
      .values({ uuid, email: email.toLowerCase(), password_hash: await hashPassword(password), data: '{}', created_at: new Date().toISOString() })
      .execute();
    return { uuid, email: email.toLowerCase(), data: {} };
  }

  async setPassword(email: string, password: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: await hashPassword(password) }).where('email', '=', email.toLowerCase()).execute();
  }

  async byEmail(email: string): Promise<(User & { password_hash: string }) | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
    return row ? { uuid: row.uuid, email: row.email, password_hash: row.password_hash, data: JSON.parse(row.data) } : undefined;
  }

  async byUuid(uuid: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    return row ? { uuid: row.uuid, email: row.email, data: JSON.parse(row.data) } : undefined;
  }

  async setData(uuid: string, data: Record<string, unknown>): Promise<void> {
    await this.db.updateTable('users').set({ data: JSON.stringify(data) }).where('uuid', '=', uuid).execute();
  }

  async count(): Promise<number> {
    const r = await this.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Issues a token; only its hash is stored. */
  async issueToken(userUuid: string, kind: 'api' | 'session' | 'async', ttlSeconds: number | null): Promise<{ token: string; csrf: string }> {
    const token = crypto.randomBytes(24).toString('base64url');
    const csrf = crypto.randomBytes(24).toString('base64url');
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

  async revokeToken(token: string): Promise<void> {
    await this.db.deleteFrom('tokens').where('token_hash', '=', sha256(token)).execute();
  }
}
