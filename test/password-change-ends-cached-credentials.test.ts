import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ADMIN, databases, startServer, type TestServer } from './helpers/harness.ts';
import { cli } from './helpers/cli-process.ts';

async function login(t: TestServer, email: string, password: string): Promise<string> {
  const res = await fetch(`${t.api}/accounts/action/?do=login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: email, password }),
  });
  assert.equal(res.status, 200);
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}

const get = (url: string, headers: Record<string, string>) => fetch(`${url}/servers/`, { headers }).then((r) => r.status);

/** GET over one kept-alive connection, saying which local port (so which connection) answered. */
function getOnConnection(agent: http.Agent, url: string, email: string, password: string): Promise<{ status: number; port: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/servers/`, { agent, auth: `${email}:${password}` }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, port: req.socket!.localPort! }));
    });
    req.on('error', reject);
  });
}

for (const db of databases()) {
  describe(`a password change ends the cached Basic credentials at once [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('`opensigma user set-password` while the server runs: the old password answers 401 at once, the new one works; tokens stay, sessions end', async () => {
      const email = 'changes-password@example.com';
      await cli(t, 'user', 'add', email, '--password', 'old-password');
      const old = t.as(email, 'old-password');
      // Verified, so the server now holds it in its cache.
      assert.equal((await old('GET', '/servers/')).status, 200);
      assert.equal((await old('GET', '/servers/')).status, 200);
      const token = (await cli(t, 'token', 'create', email)).trim();
      const cookie = await login(t, email, 'old-password');
      assert.equal(await get(t.api, { cookie }), 200);

      await cli(t, 'user', 'set-password', email.toUpperCase(), '--password', 'new-password');

      assert.equal((await old('GET', '/servers/')).status, 401);
      assert.equal((await t.as(email, 'new-password')('GET', '/servers/')).status, 200);
      assert.equal((await old('GET', '/servers/')).status, 401);
      assert.equal(await get(t.api, { authorization: `Bearer ${token}` }), 200, 'API tokens survive a password change');
      assert.equal(await get(t.api, { cookie }), 401, 'a session opened with the old password ends');
      const relogin = await fetch(`${t.api}/accounts/action/?do=login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: email, password: 'old-password' }),
      });
      assert.equal(relogin.status, 401);
    });

    test('credentials verified on a kept-alive connection end there too', async () => {
      const email = 'keeps-connection@example.com';
      await cli(t, 'user', 'add', email, '--password', 'old-password');
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await getOnConnection(agent, t.api, email, 'old-password');
        const again = await getOnConnection(agent, t.api, email, 'old-password');
        assert.deepEqual([first.status, again.status], [200, 200]);
        await cli(t, 'user', 'set-password', email, '--password', 'new-password');
        const after = await getOnConnection(agent, t.api, email, 'old-password');
        assert.equal(after.port, first.port, 'the same connection');
        assert.equal(after.status, 401);
        assert.equal((await getOnConnection(agent, t.api, email, 'new-password')).status, 200);
        assert.equal((await getOnConnection(agent, t.api, email, 'other-password')).status, 401);
      } finally {
        agent.destroy();
      }
    });

    test('`opensigma user set-password` of a missing user fails and changes nothing', async () => {
      await assert.rejects(cli(t, 'user', 'set-password', 'nobody@example.com', '--password', 'x'), /no user nobody@example.com/);
      assert.equal((await t.call('GET', '/servers/')).status, 200);
    });

    if (db.name === 'postgres') {
      test('with two API nodes, a change through the CLI ends the cached credentials on both', async () => {
        const other = await startServer({ OPENSIGMA_DATABASE_URL: t.config.databaseUrl!, OPENSIGMA_ROLE: 'api' });
        try {
          const email = 'two-nodes@example.com';
          await cli(t, 'user', 'add', email, '--password', 'old-password');
          for (const node of [t, other]) assert.equal((await node.as(email, 'old-password')('GET', '/servers/')).status, 200);
          await cli(t, 'user', 'set-password', email, '--password', 'new-password');
          for (const node of [t, other]) {
            assert.equal((await node.as(email, 'old-password')('GET', '/servers/')).status, 401);
            assert.equal((await node.as(email, 'new-password')('GET', '/servers/')).status, 200);
          }
        } finally {
          await other.close();
        }
      });

      test('a node starting with OPENSIGMA_ADMIN_PASSWORD changes the admin password on the running nodes only when it differs', async () => {
        const cookie = await login(t, ADMIN.email, ADMIN.password);
        const same = await startServer({ OPENSIGMA_DATABASE_URL: t.config.databaseUrl!, OPENSIGMA_ROLE: 'api' });
        await same.close();
        assert.equal(await get(t.api, { cookie }), 200, 'the same password set again is no change: sessions stay');
        const changed = await startServer({
          OPENSIGMA_DATABASE_URL: t.config.databaseUrl!,
          OPENSIGMA_ROLE: 'api',
          OPENSIGMA_ADMIN_PASSWORD: 'rotated-password',
        });
        try {
          assert.equal((await t.call('GET', '/servers/')).status, 401);
          assert.equal(await get(t.api, { cookie }), 401);
          assert.equal((await t.as(ADMIN.email, 'rotated-password')('GET', '/servers/')).status, 200);
        } finally {
          await changed.close();
          await cli(t, 'user', 'set-password', ADMIN.email, '--password', ADMIN.password);
        }
      });
    }
  });
}
