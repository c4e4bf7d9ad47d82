import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../src/api/app.ts';
import { databases, startServer, type TestServer } from './helpers/harness.ts';
import { SocketReader } from './helpers/socket-reader.ts';

/** The only routes of the OpenAPI document anyone may call without credentials. */
const PUBLIC = new Set(['GET /api/2.0/locations/', 'POST /api/2.0/accounts/action/']);

const IDS = ['00000000-0000-4000-8000-000000000000', 'not-an-id', '%2e%2e', 'x'.repeat(300), '198.51.100.7', '1'];
const BODIES: Array<{ type?: string; body?: string }> = [
  {},
  { type: 'application/json', body: '{"objects": [{"name": "x", "cpu": 1000, "mem": 536870912, "vnc_password": "v"}]}' },
  { type: 'application/json', body: '{not json' },
  { type: 'application/json', body: JSON.stringify({ objects: Array.from({ length: 2000 }, () => ({ name: 'y' })) }) },
  { type: 'text/plain', body: 'hello' },
];
const WRONG_CREDENTIALS: Array<Record<string, string>> = [
  {},
  { authorization: `Basic ${Buffer.from('admin@example.com:wrong').toString('base64')}` },
  { authorization: `Basic ${Buffer.from('nobody@example.com:admin-password').toString('base64')}` },
  { authorization: 'Basic !!!' },
  { authorization: 'Bearer not-a-token' },
  { authorization: 'Digest whatever' },
  { cookie: 'sessionid=forged; csrftoken=forged', 'x-csrftoken': 'forged' },
];

const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;

function assertRefused(status: number, text: string, what: string) {
  assert.equal(status, 401, `${what}: ${text.slice(0, 200)}`);
  const body = JSON.parse(text);
  assert.ok(Array.isArray(body) && body.length === 1 && body[0].error_type === 'permission' && 'error_point' in body[0], `${what}: ${text}`);
}

for (const db of databases()) {
  describe(`every route refuses anonymous callers before reading the body [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      // The sweep sends hundreds of wrong passwords from one address: the login throttle is not what it tests.
      t = await startServer({ OPENSIGMA_LOGIN_FAILURES_PER_SOURCE: '100000', OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT: '100000' }, db);
    });
    after(async () => t.close());

    test('every non-public route of the OpenAPI document answers 401 to anonymous and wrong credentials, whatever the id, query or body', async () => {
      const doc = (await (await fetch(`${t.api}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      let checked = 0;
      let route = 0;
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
          if (method === 'HEAD' || PUBLIC.has(`${method} ${path}`)) continue;
          // Every kind of wrong credentials on every fifth route: a wrong password costs a hash, and hashes are bounded.
          const wrong = route++ % 5 === 0 ? WRONG_CREDENTIALS : WRONG_CREDENTIALS.filter((c) => !/^Basic [A-Za-z0-9+/]{8}/.test(c.authorization ?? ''));
          const requests: Array<Promise<void>> = [];
          for (const id of IDS) {
            const url = `${t.url}${path.replace(/\{[^}]+\}/g, id)}?do=start&limit=-1&name__in=${'a,'.repeat(500)}`;
            const bodies = method === 'GET' ? [{}] : BODIES;
            for (const [b, { type, body }] of bodies.entries())
              for (const creds of id === IDS[0] ? (b === 0 ? wrong : wrong.filter((c) => !c.authorization?.startsWith('Basic '))) : [{}])
                requests.push(
                  fetch(url, { method, headers: { ...creds, ...(type ? { 'content-type': type } : {}) }, body }).then(async (res) => {
                    assertRefused(res.status, await res.text(), `${method} ${url.slice(0, 120)} ${JSON.stringify(creds)} ${type}`);
                    checked++;
                  }),
                );
          }
          await Promise.all(requests);
        }
      }
      assert.ok(checked > 500, `only ${checked} requests`);
    });

    test('paths no route matches, wrong methods and OPTIONS are 401 to anonymous callers too: routing is not probed', async () => {
      for (const [method, p] of [
        ['GET', '/api/2.0/no_such_resource/'],
        ['GET', '/api/2.0/servers/00000000-0000-4000-8000-000000000000/no/such/thing/'],
        ['PATCH', '/api/2.0/servers/'],
        ['DELETE', '/api/2.0/locations/'],
        ['OPTIONS', '/api/2.0/servers/'],
        ['GET', '/no-such-page'],
      ] as const) {
        const res = await fetch(`${t.url}${p}`, { method });
        assertRefused(res.status, await res.text(), `${method} ${p}`);
      }
      // The same with credentials tells the truth.
      const authorization = basic('admin@example.com', 'admin-password');
      assert.equal((await fetch(`${t.api}/no_such_resource/`, { headers: { authorization } })).status, 404);
      assert.equal((await fetch(`${t.api}/servers/`, { method: 'PATCH', headers: { authorization } })).status, 405);
    });

    test('the public routes answer anonymous callers', async () => {
      assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${t.api}/openapi.json`)).status, 200);
      assert.equal((await fetch(`${t.api}/locations/`)).status, 200);
      assert.equal((await fetch(`${t.url}/metrics`)).status, 200);
      const login = await fetch(`${t.api}/accounts/action/?do=login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"username": "admin@example.com", "password": "admin-password"}',
      });
      assert.equal(login.status, 200);
    });

    test("an anonymous request's body is not read: a large body on a slow socket is answered 401 before it is sent", async () => {
      for (const auth of ['', `authorization: ${basic('admin@example.com', 'wrong')}\r\n`]) {
        const s = await SocketReader.connect(t.url);
        // 500 kB declared (under the body limit), 100 bytes sent: a server reading the body first would wait for the rest.
        s.sock.write(
          `POST /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: 500000\r\n\r\n${'{"objects": ['.padEnd(100)}`,
        );
        const head = await s.readUntil('\r\n\r\n', 5000);
        assert.match(head, /^HTTP\/1\.1 401 /);
        assert.match(head, /\r\nconnection: close\r\n/i, 'the connection is not kept to drain the body');
        await s.closed;
      }
    });
  });
}

describe('a route that does not declare who may call it refuses to register', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(async () => t.close());

  test('through the API routes and straight on Fastify', async () => {
    const { app, routes } = await buildApp(t.running.svc, { logger: false });
    try {
      const handler = async () => ({ leaked: true });
      assert.throws(() => routes.get('/undeclared/', {} as never, handler), /declares no access/);
      assert.throws(() => routes.post('/undeclared/', { auth: 'anyone' } as never, handler), /declares no access/);
      assert.throws(() => app.get('/undeclared', handler), /declares no access/);
      assert.throws(() => app.get('/undeclared', { config: {} }, handler), /declares no access/);
      routes.get('/declared/', { auth: 'user' }, handler);
      await app.ready();
      const anonymous = await app.inject({ method: 'GET', url: '/api/2.0/declared/' });
      assert.equal(anonymous.statusCode, 401);
    } finally {
      await app.close();
    }
  });
});
