import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { otherUser } from './helpers/drives.ts';

const PROMPT = 'root@bridge-box:~# ';

/** A cookie session as the web console gets one: POST ?do=login. */
async function session(t: TestServer, email: string, password: string): Promise<string> {
  const body = JSON.stringify({ username: email, password });
  const r = await fetch(`${t.api}/accounts/action/?do=login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(r.status, 200);
  return r.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}

interface Opened {
  status: number;
  ws?: WebSocket;
  /** everything received so far */
  text: () => string;
  bytes: () => Buffer;
  closed: Promise<void>;
}

function open(url: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    let got = Buffer.alloc(0);
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.on('message', (d: Buffer) => (got = Buffer.concat([got, d])));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, text: () => '', bytes: () => got, closed: Promise.resolve() });
      ws.terminate();
    });
    ws.on('open', () => resolve({ status: 101, ws, text: () => got.toString('latin1'), bytes: () => got, closed }));
    ws.on('error', () => {});
  });
}

const until = (o: Opened, marker: string, what: string) => waitFor(async () => o.text().includes(marker), 10_000, what);

for (const db of databases()) {
  describe(`the web console's bridges [${db.name}]`, () => {
    let t: TestServer;
    let uuid: string;
    let ws: string;
    let owner: string;
    let grantee: string;
    let lister: string;
    let stranger: string;
    before(async () => {
      t = await startServer({}, db);
      ws = t.url.replace(/^http/, 'ws');
      uuid = (await t.call('POST', '/servers/', minimalServer('bridge-box', { vnc_password: 'bridge99' }))).body.objects[0].uuid;
      await otherUser(t, 'grantee@example.com', 'grantee-password');
      await otherUser(t, 'lister@example.com', 'lister-password');
      await otherUser(t, 'stranger@example.com', 'stranger-password');
      const tag = (await t.call('POST', '/tags/', { name: 'shared', resources: [uuid] })).body.objects[0];
      const share = (name: string, email: string, rules: string[]) =>
        t.call('POST', '/acls/', { name, grantees: [{ email }], rules: rules.map((permission) => ({ permission })), tags: [tag.uuid] });
      assert.equal((await share('consoles', 'grantee@example.com', ['LIST', 'OPEN_VNC'])).status, 201);
      assert.equal((await share('look only', 'lister@example.com', ['LIST'])).status, 201);
      owner = await session(t, 'admin@example.com', 'admin-password');
      grantee = await session(t, 'grantee@example.com', 'grantee-password');
      lister = await session(t, 'lister@example.com', 'lister-password');
      stranger = await session(t, 'stranger@example.com', 'stranger-password');
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
    });
    after(async () => t.close());

    test('no session is 401, a server not shared with the caller is 404, shared without OPEN_VNC is 403, from another origin 403', async () => {
      for (const kind of ['serial', 'vnc']) {
        const url = `${ws}/websocket/servers/${uuid}/${kind}`;
        assert.equal((await open(url)).status, 401);
        assert.equal((await open(url, { cookie: 'sessionid=not-a-session' })).status, 401);
        const basic = `Basic ${Buffer.from('admin@example.com:admin-password').toString('base64')}`;
        assert.equal((await open(url, { authorization: basic })).status, 401, 'only the cookie session opens a bridge');
        assert.equal((await open(url, { cookie: stranger })).status, 404);
        assert.equal((await open(`${ws}/websocket/servers/00000000-0000-4000-8000-000000000000/${kind}`, { cookie: owner })).status, 404);
        assert.equal((await open(url, { cookie: lister })).status, 403);
        assert.equal((await open(url, { cookie: owner, origin: 'http://elsewhere.example' })).status, 403);
        assert.equal((await open(url, { cookie: owner, origin: 'null' })).status, 403, 'a sandboxed frame is another origin');
      }
    });

    test('the owner and a grantee with OPEN_VNC reach ttyS0; the password is typed for them; what was written shows first', async () => {
      const first = await open(`${ws}/websocket/servers/${uuid}/serial`, { cookie: grantee, origin: t.url });
      assert.equal(first.status, 101);
      await until(first, PROMPT, 'the prompt');
      first.ws!.send('echo typed-before\r');
      await until(first, 'typed-before\r\nroot@', 'the answer');
      assert.doesNotMatch(first.text(), /Password|Connected to the serial console/, 'the handshake stays in the bridge');
      first.ws!.close();
      await first.closed;

      const again = (await waitFor(
        async (): Promise<Opened | undefined> => {
          const o = await open(`${ws}/websocket/servers/${uuid}/serial`, { cookie: owner });
          return o.status === 101 ? o : undefined; // the console serves one client: the first may still be leaving
        },
        10_000,
        'the console to take a new client',
      ))!;
      await until(again, 'typed-before', 'the earlier output');
      again.ws!.send('hostname\r');
      await until(again, 'hostname\r\nbridge-box\r\n', 'the new answer');
      assert.ok(again.text().indexOf('typed-before') < again.text().indexOf('hostname\r\nbridge-box'), 'old output comes before new');

      // The console ends with the server.
      await t.call('POST', `/servers/${uuid}/action/?do=stop`);
      await again.closed;
      await waitForStatus(t, uuid, 'stopped');
      assert.equal((await open(`${ws}/websocket/servers/${uuid}/serial`, { cookie: owner })).status, 403, 'a stopped server has no console');
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
    });

    test('VNC: the bridge authenticates to the display and offers the page no authentication, then passes RFB through', async () => {
      const v = await open(`${ws}/websocket/servers/${uuid}/vnc`, { cookie: grantee });
      assert.equal(v.status, 101);
      await waitFor(async () => v.bytes().length >= 12, 10_000, 'the RFB version');
      assert.equal(v.bytes().subarray(0, 12).toString('latin1'), 'RFB 003.008\n');
      v.ws!.send(Buffer.from('RFB 003.008\n', 'latin1'));
      await waitFor(async () => v.bytes().length >= 14, 10_000, 'the security types');
      assert.deepEqual([...v.bytes().subarray(12, 14)], [1, 1], 'one type: None');
      v.ws!.send(Buffer.from([1]));
      await waitFor(async () => v.bytes().length >= 18, 10_000, 'the security result');
      assert.equal(v.bytes().readUInt32BE(14), 0);
      v.ws!.send(Buffer.from([1])); // ClientInit, shared
      await waitFor(async () => v.bytes().length >= 18 + 24, 10_000, 'ServerInit');
      const init = v.bytes().subarray(18);
      assert.deepEqual([init.readUInt16BE(0), init.readUInt16BE(2)], [640, 400], "the sim's screen");
      await waitFor(async () => v.bytes().length >= 18 + 24 + init.readUInt32BE(20), 10_000, 'the desktop name');
      v.ws!.close();
    });
  });
}
