import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { cli } from './helpers/cli-process.ts';

async function raw(t: TestServer, method: string, p: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`${t.api}${p}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

for (const db of databases()) {
  describe(`authentication [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('HTTP Basic with email and password; the email is case-insensitive', async () => {
      assert.equal((await t.call('GET', '/servers/')).status, 200);
      assert.equal((await t.as(ADMIN.email.toUpperCase(), ADMIN.password)('GET', '/servers/')).status, 200);
      const bad = await t.as(ADMIN.email, 'nope')('GET', '/servers/');
      assert.equal(bad.status, 401);
      assert.equal(bad.body[0].error_type, 'permission');
      assert.ok(bad.headers.get('www-authenticate'));
    });

    test('cookie session: login, reads with the cookie, writes need X-CSRFToken = the csrftoken cookie, logout ends it', async () => {
      const login = await raw(t, 'POST', '/accounts/action/?do=login', {}, { username: ADMIN.email, password: ADMIN.password });
      assert.equal(login.status, 200, login.text);
      const cookies = Object.fromEntries(login.headers.getSetCookie().map((c) => c.split(';')[0]!.split('=') as [string, string]));
      assert.ok(cookies.sessionid && cookies.csrftoken);
      const cookie = `sessionid=${cookies.sessionid}; csrftoken=${cookies.csrftoken}`;
      assert.equal((await raw(t, 'GET', '/servers/', { cookie })).status, 200);
      const noCsrf = await raw(t, 'POST', '/servers/', { cookie }, minimalServer('cookie'));
      assert.equal(noCsrf.status, 403);
      assert.equal(noCsrf.body[0].error_type, 'permission');
      const wrongCsrf = await raw(t, 'POST', '/servers/', { cookie, 'x-csrftoken': 'forged' }, minimalServer('cookie'));
      assert.equal(wrongCsrf.status, 403);
      const ok = await raw(t, 'POST', '/servers/', { cookie, 'x-csrftoken': cookies.csrftoken!, referer: `${t.api}/` }, minimalServer('cookie'));
      assert.equal(ok.status, 201, ok.text);
      const del = await raw(t, 'DELETE', `/servers/${ok.body.objects[0].uuid}/`, { cookie });
      assert.equal(del.status, 403);
      const badLogin = await raw(t, 'POST', '/accounts/action/?do=login', {}, { username: ADMIN.email, password: 'wrong' });
      assert.equal(badLogin.status, 401);
      const logout = await raw(t, 'POST', '/accounts/action/?do=logout', { cookie, 'x-csrftoken': cookies.csrftoken! }, {});
      assert.equal(logout.status, 200);
      assert.equal((await raw(t, 'GET', '/servers/', { cookie })).status, 401);
    });

    test('Bearer tokens from `opensigma token create`, users from `opensigma user add`, while the server runs', async () => {
      await cli(t, 'user', 'add', 'cli-user@example.com', '--password', 'cli-password');
      const asCli = t.as('cli-user@example.com', 'cli-password');
      assert.equal((await asCli('GET', '/servers/')).status, 200);
      const token = (await cli(t, 'token', 'create', 'cli-user@example.com')).trim().split(/\s+/).at(-1)!;
      assert.ok(token.length >= 16, token);
      const bearer = { authorization: `Bearer ${token}` };
      const made = await raw(t, 'POST', '/servers/', bearer, minimalServer('bearer'));
      assert.equal(made.status, 201, made.text);
      const mine = await asCli('GET', '/servers/');
      assert.deepEqual(
        mine.body.objects.map((s: any) => s.uuid),
        [made.body.objects[0].uuid],
      );
      assert.equal((await raw(t, 'GET', '/servers/', { authorization: `Bearer ${token}x` })).status, 401);
      // The admin does not see it: the token acts as its user only.
      assert.ok(!(await t.call('GET', '/servers/?limit=0')).body.objects.some((s: any) => s.uuid === made.body.objects[0].uuid));
    });

    test('public routes need no credentials', async () => {
      assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${t.api}/openapi.json`)).status, 200);
    });
  });
}
