import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config.ts';
import { serve, type Running } from '../../src/server.ts';

export const ADMIN = { email: 'admin@example.com', password: 'admin-password' };

/** The databases the behaviour suite runs on: SQLite always, PostgreSQL when OPENSIGMA_TEST_POSTGRES_URL is set. */
export function databases(): Array<{ name: string; url: string | null }> {
  const out: Array<{ name: string; url: string | null }> = [{ name: 'sqlite', url: null }];
  if (process.env.OPENSIGMA_TEST_POSTGRES_URL) out.push({ name: 'postgres', url: process.env.OPENSIGMA_TEST_POSTGRES_URL });
  return out;
}

export interface TestServer {
  url: string;
  api: string;
  dataDir: string;
  running: Running;
  config: Config;
  /** fetch with the admin's Basic credentials; JSON bodies are encoded and decoded. */
  call(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  as(email: string, password: string): TestServer['call'];
  close(): Promise<void>;
}

let pgCounter = 0;

/** One statement on its own connection, straight to PostgreSQL (not through opensigma): what a test checks there. */
export async function pgQuery(url: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** A fresh database for one test server: a new SQLite dir, or a new PostgreSQL schema-less database. */
export async function freshPostgres(url: string): Promise<string> {
  const pg = (await import('pg')).default;
  const name = `opensigma_test_${process.pid}_${Date.now().toString(36)}_${pgCounter++}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drops a database made by freshPostgres, so test runs do not pile them up. */
export async function dropPostgres(url: string): Promise<void> {
  const pg = (await import('pg')).default;
  const u = new URL(url);
  const name = u.pathname.slice(1);
  if (!/^opensigma_test_\w+$/.test(name)) return;
  u.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: u.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Starts a real opensigma on a free loopback port with a temporary data dir. */
export async function startServer(env: Record<string, string> = {}, db: { url: string | null } = { url: null }): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-test-'));
  const databaseUrl = db.url ? await freshPostgres(db.url) : undefined;
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_SIM_DELAY_MS: '50',
      OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
      OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
      OPENSIGMA_LOG_LEVEL: 'silent',
      OPENSIGMA_RECONCILE_MS: '1000',
      // fetch reuses a pooled connection until a second before the server's keep-alive timeout, by its own timer; a
      // test process busy for longer (a 512 MiB buffer made on a loaded machine) then sends on a connection the server
      // has just closed: ECONNRESET, "fetch failed". Tests of the timeout itself set their own.
      OPENSIGMA_KEEPALIVE_TIMEOUT_MS: '60000',
      ...(databaseUrl ? { OPENSIGMA_DATABASE_URL: databaseUrl } : {}),
      ...env,
    },
    {},
  );
  const running = await serve(config, { logger: false });
  const url = running.url;
  const api = `${url}/api/2.0`;
  const as =
    (email: string, password: string): TestServer['call'] =>
    async (method, p, body, headers = {}) => {
      const res = await fetch(p.startsWith('http') ? p : `${api}${p}`, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers, text };
    };
  return {
    url,
    api,
    dataDir,
    running,
    config,
    call: as(ADMIN.email, ADMIN.password),
    as,
    async close() {
      await running.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      if (databaseUrl) await dropPostgres(databaseUrl).catch(() => {});
    },
  };
}

/** Polls until `fn` returns a truthy value. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function waitForStatus(t: TestServer, uuid: string, status: string, timeoutMs = 10000): Promise<any> {
  return waitFor(
    async () => {
      const r = await t.call('GET', `/servers/${uuid}/`);
      return r.body?.status === status ? r.body : null;
    },
    timeoutMs,
    `server ${uuid} to be ${status}`,
  );
}

export const minimalServer = (name = 'test-server', extra: Record<string, unknown> = {}) => ({
  cpu: 1000,
  mem: 536870912,
  name,
  vnc_password: 'testserver',
  ...extra,
});

/** JSON calls to the API at `api` (…/api/2.0) with one user's Basic credentials: for processes no TestServer wraps. */
export function basicCaller(api: string, user: { email: string; password: string }) {
  const authorization = `Basic ${Buffer.from(`${user.email}:${user.password}`).toString('base64')}`;
  return async (method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${api}${p}`, {
      method,
      headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}
