import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { databases, startServer, type TestServer } from './helpers/harness.ts';
import { cli } from './helpers/cli-process.ts';
import { parseDuration } from '../src/cli/tokens.ts';

const USER = { email: 'token-user@example.com', password: 'token-user-password' };

const get = async (t: TestServer, headers: Record<string, string>) => (await fetch(`${t.api}/servers/`, { headers })).status;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const newToken = async (t: TestServer, ...extra: string[]) => (await cli(t, 'token', 'create', USER.email, ...extra)).trim();
const ids = async (t: TestServer) =>
  (await cli(t, 'token', 'list', USER.email))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/));

for (const db of databases()) {
  describe(`tokens expire and are revoked at once [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(USER.email, USER.password);
    });
    after(async () => t.close());

    test('token create --expires-in, list, revoke ID: a token works until it expires or is revoked, at once, and only it', async () => {
      const short = await newToken(t, '--expires-in', '5s');
      const expiresAt = Date.now() + 5000;
      assert.equal(await get(t, bearer(short)), 200);
      // (each command is a process of its own: the next steps take about as long as the short token lives)
      const long = await newToken(t, '--expires-in', '30d');
      const other = await newToken(t);
      for (const tok of [long, other]) assert.equal(await get(t, bearer(tok)), 200);
      const listed = await ids(t);
      // A token's id is the start of the hash the store keeps of it.
      const idOf = (tok: string) => crypto.createHash('sha256').update(tok).digest('hex').slice(0, 12);
      assert.deepEqual(listed.map((l) => l[0]).sort(), [short, long, other].map(idOf).sort());
      assert.ok(listed.every((l) => l[1] === 'api'));
      const longLine = listed.find((l) => l[0] === idOf(long))!.join(' ');
      assert.ok(Date.parse(/expires (\S+)/.exec(longLine)![1]!) > Date.now() + 29 * 86400_000, longLine);

      await cli(t, 'token', 'revoke', idOf(other));
      assert.equal(await get(t, bearer(other)), 401, 'revoked: refused at the very next request');
      assert.equal(await get(t, bearer(long)), 200, 'the other tokens still work');
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 300));
      assert.equal(await get(t, bearer(short)), 401, 'expired');
      assert.match(await cli(t, 'token', 'list', USER.email), /\(expired\)/);
    });

    test('token revoke --all EMAIL ends every token and cookie session of the user', async () => {
      const api = await newToken(t);
      const login = await fetch(`${t.api}/accounts/action/?do=login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: USER.email, password: USER.password }),
      });
      const cookie = login.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      assert.equal(await get(t, bearer(api)), 200);
      assert.equal(await get(t, { cookie }), 200);
      assert.match(await cli(t, 'token', 'revoke', '--all', USER.email), /^revoked \d+ tokens/);
      assert.equal(await get(t, bearer(api)), 401);
      assert.equal(await get(t, { cookie }), 401);
      const user = await t.running.svc.store.users.byEmail(USER.email);
      assert.deepEqual(await t.running.svc.store.users.listTokens(user!.uuid), []);
    });
  });
}

describe('token command mistakes', () => {
  test('a duration that is not one, a revoke without an id: said in one line, exit 2', async () => {
    assert.equal(parseDuration('30d'), 30 * 86400);
    assert.equal(parseDuration('12h'), 12 * 3600);
    assert.equal(parseDuration('0d'), null);
    assert.equal(parseDuration('tomorrow'), null);
    const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'opensigma.js');
    for (const args of [
      ['token', 'create', 'x@example.com', '--expires-in', 'soon'],
      ['token', 'revoke'],
    ]) {
      const r = await promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, OPENSIGMA_DATA: '/nonexistent-opensigma-test' } }).then(
        () => assert.fail('should fail'),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
