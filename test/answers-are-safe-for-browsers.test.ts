import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { SocketReader } from './helpers/socket-reader.ts';

const basic = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

async function send(t: TestServer, method: string, p: string, headers: Record<string, string>, body?: string | Blob) {
  const res = await fetch(`${t.api}${p}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

function assertErrorArray(r: { status: number; text: string; body: any }, status: number, what: string) {
  assert.equal(r.status, status, `${what}: ${r.text}`);
  assert.ok(Array.isArray(r.body) && r.body.length >= 1 && typeof r.body[0].error_message === 'string' && 'error_point' in r.body[0], `${what}: ${r.text}`);
}

for (const db of databases()) {
  describe(`answers are safe for browsers [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('only application/json bodies are parsed: other types, and a body without a type, are 415 and change nothing', async () => {
      const asJson = JSON.stringify({ objects: [{ name: 'smuggled' }] });
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) {
        assertErrorArray(await send(t, 'POST', '/tags/', { authorization: basic, 'content-type': type }, asJson), 415, type);
      }
      // A script's Blob body carries no content type at all.
      assertErrorArray(await send(t, 'POST', '/tags/', { authorization: basic }, new Blob([asJson])), 415, 'no content type');
      assert.deepEqual((await t.call('GET', '/tags/')).body.objects, [], 'no refused request created a tag');

      const ok = await send(
        t,
        'POST',
        '/tags/',
        { authorization: basic, 'content-type': 'application/json; charset=utf-8' },
        JSON.stringify({ objects: [{ name: 'real' }] }),
      );
      assert.equal(ok.status, 201, ok.text);
      // Action calls send no body and no type.
      const server = (await t.call('POST', '/servers/', minimalServer('browser'))).body.objects[0];
      const start = await send(t, 'POST', `/servers/${server.uuid}/action/?do=start`, { authorization: basic });
      assert.equal(start.status, 202, start.text);
    });

    test('no Basic challenge for requests from a browser script, which would raise the browser login dialog', async () => {
      const plain = await send(t, 'GET', '/servers/', {});
      assert.match(plain.headers.get('www-authenticate') ?? '', /^Basic /);
      for (const headers of [{ 'x-requested-with': 'XMLHttpRequest' }, { cookie: 'csrftoken=a; sessionid=expired' }] as Array<Record<string, string>>) {
        const r = await send(t, 'GET', '/servers/', headers);
        assertErrorArray(r, 401, JSON.stringify(headers));
        assert.equal(r.headers.get('www-authenticate'), null, JSON.stringify(headers));
      }
    });

    test('answers with private keys, tokens or secrets are not stored by caches, and no answer is content-sniffed', async () => {
      const made = await send(
        t,
        'POST',
        '/keypairs/',
        { authorization: basic, 'content-type': 'application/json' },
        JSON.stringify({ objects: [{ name: 'k', algorithm_type: 'ed25519' }] }),
      );
      assert.equal(made.status, 201, made.text);
      assert.ok(made.body.objects[0].private_key);
      assert.equal(made.headers.get('cache-control'), 'no-store');
      const login = await send(
        t,
        'POST',
        '/accounts/action/?do=login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username: ADMIN.email, password: ADMIN.password }),
      );
      assert.equal(login.headers.get('cache-control'), 'no-store');
      const answers = [
        made,
        login,
        await send(t, 'GET', '/servers/', { authorization: basic }),
        await send(t, 'GET', '/servers/', {}),
        await send(t, 'GET', '/no_such/', { authorization: basic }),
        await send(t, 'POST', '/tags/', { authorization: basic, 'content-type': 'application/json' }, '{bad'),
        await send(t, 'GET', '/locations/', {}),
      ];
      for (const a of answers) assert.equal(a.headers.get('x-content-type-options'), 'nosniff', a.text);
      for (const p of ['/healthz', '/metrics', '/api/2.0/openapi.json'])
        assert.equal((await fetch(`${t.url}${p}`)).headers.get('x-content-type-options'), 'nosniff', p);
      // Even an answer to a request that is not HTTP.
      const s = await SocketReader.connect(t.url);
      s.sock.write('GARBAGE\r\n\r\n');
      const head = await s.readUntil('\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 400 /);
      assert.match(head, /x-content-type-options: nosniff/i);
    });

    test('session cookies are HttpOnly; csrftoken is readable by the console', async () => {
      const login = await send(
        t,
        'POST',
        '/accounts/action/?do=login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username: ADMIN.email, password: ADMIN.password }),
      );
      const cookies = login.headers.getSetCookie();
      const session = cookies.find((c) => c.startsWith('sessionid='))!;
      const csrf = cookies.find((c) => c.startsWith('csrftoken='))!;
      assert.match(session, /; HttpOnly/);
      assert.doesNotMatch(csrf, /HttpOnly/);
      assert.doesNotMatch(session, /Secure/, 'plain HTTP: a Secure cookie would never come back');
      const async = await send(t, 'POST', '/accounts/action/?do=authenticate_asynchronous', { authorization: basic });
      assert.match(async.headers.getSetCookie()[0]!, /^async_auth=.*; HttpOnly/);
    });
  });
}

describe('cookies under TLS are Secure', () => {
  let t: TestServer;
  let dir: string;
  const hasOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  before(async () => {
    if (!hasOpenssl) return;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      {
        stdio: 'ignore',
      },
    );
    t = await startServer({ OPENSIGMA_TLS_CERT: path.join(dir, 'cert.pem'), OPENSIGMA_TLS_KEY: path.join(dir, 'key.pem') });
  });
  after(async () => {
    await t?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('login, logout and the websocket token set Secure cookies', { skip: hasOpenssl ? false : 'openssl is not installed' }, async () => {
    const post = (q: string, headers: Record<string, string>, body: string) =>
      new Promise<string[]>((resolve, reject) => {
        const req = https.request(`${t.api}/accounts/action/?do=${q}`, { method: 'POST', headers, rejectUnauthorized: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers['set-cookie'] ?? []));
        });
        req.on('error', reject);
        req.end(body);
      });
    const login = await post('login', { 'content-type': 'application/json' }, JSON.stringify({ username: ADMIN.email, password: ADMIN.password }));
    assert.equal(login.length, 2);
    for (const c of login) assert.match(c, /; Secure/, c);
    const [async] = await post('authenticate_asynchronous', { authorization: basic }, '');
    assert.match(async!, /; HttpOnly.*; Secure/);
  });
});
