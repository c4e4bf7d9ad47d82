import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

interface Client {
  frames: any[];
  ws: WebSocket;
  close(): void;
}

async function asyncCookie(call: TestServer['call']): Promise<string> {
  const r = await call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
  assert.equal(r.status, 200);
  const cookie = r.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^async_auth=[^;]+; Max-Age=120; Path=\//);
  return cookie.split(';')[0]!;
}

async function connect(t: TestServer, cookie: string, path = '/websocket'): Promise<Client> {
  const ws = new WebSocket(t.url.replace(/^http/, 'ws') + path, { headers: { cookie } });
  const frames: any[] = [];
  ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { frames, ws, close: () => ws.close() };
}

/** How the server answers an upgrade it refuses: the HTTP status. */
async function refusal(url: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => reject(new Error('connected without credentials')));
    ws.once('error', () => {});
  });
}

for (const db of databases()) {
  describe(`websocket notifications [${db.name}]`, () => {
    let t: TestServer;
    let me: Client;
    const other = () => t.as('other@example.com', 'other-password');
    before(async () => {
      // Frames show the object as it is when sent: a starting phase longer than a render under load keeps it visible.
      t = await startServer({ OPENSIGMA_SIM_DELAY_MS: '1000' }, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
      me = await connect(t, await asyncCookie(t.call));
    });
    after(async () => {
      me.close();
      await t.close();
    });

    test('starting a server sends frames with its full object: starting, then running', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('ws-life', { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }))).body.objects[0];
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      const mine = () => me.frames.filter((f) => f.resource_uri === `/api/2.0/servers/${s.uuid}/`);
      await waitFor(async () => mine().some((f) => f.object?.status === 'running'), 5000, 'running frame');
      const statuses = mine().map((f) => f.object.status);
      // The created frame shows the server as it is when sent: stopped, or already starting if its render came late.
      assert.ok(['stopped', 'starting'].includes(statuses[0]!), `created: ${statuses.join(',')}`);
      assert.ok(statuses.slice(1, statuses.indexOf('running')).includes('starting'), statuses.join(','));
      const frame = mine().find((f) => f.object.status === 'running');
      assert.equal(frame.resource_type, 'servers');
      const get = (await t.call('GET', `/servers/${s.uuid}/`)).body;
      assert.deepEqual(Object.keys(frame.object).sort(), Object.keys(get).sort());
      assert.equal(frame.object.uuid, s.uuid);
      assert.ok(frame.object.runtime);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitFor(async () => mine().some((f) => f.object?.status === 'stopped' && f !== mine()[0]), 5000, 'stopped frame');
      assert.equal((await t.call('DELETE', `/servers/${s.uuid}/`)).status, 204);
      const gone = await waitFor(async () => mine().find((f) => !('object' in f)), 5000, 'deletion frame');
      assert.deepEqual(gone, { resource_type: 'servers', resource_uri: `/api/2.0/servers/${s.uuid}/` });
    });

    test('drives, IPs and VLANs of the account are notified too', async () => {
      const d = (await t.call('POST', '/drives/', { name: 'ws-drive', size: 1073741824, media: 'disk' })).body.objects[0];
      const subs = (
        await t.call('POST', '/subscriptions/', [
          { resource: 'ip', period: '1 month' },
          { resource: 'vlan', period: '1 month' },
        ])
      ).body.objects;
      const [ip, vlan] = subs.map((s: any) => s.subscribed_object);
      await waitFor(async () => me.frames.some((f) => f.resource_type === 'drives' && f.object?.uuid === d.uuid), 5000, 'drive frame');
      const ipFrame = await waitFor(async () => me.frames.find((f) => f.resource_type === 'ips' && f.object?.uuid === ip), 5000, 'ip frame');
      assert.equal(ipFrame.resource_uri, `/api/2.0/ips/${ip}/`);
      assert.ok(ipFrame.object.subscription);
      await waitFor(async () => me.frames.some((f) => f.resource_type === 'vlans' && f.object?.uuid === vlan), 5000, 'vlan frame');
      const subFrame = await waitFor(
        async () => me.frames.find((f) => f.resource_type === 'subscriptions' && f.object?.id === subs[0].id),
        5000,
        'subscription frame',
      );
      assert.equal(subFrame.resource_uri, `/api/2.0/subscriptions/${subs[0].id}/`);
      await t.call('PUT', `/ips/${ip}/`, { meta: { name: 'changed' } });
      await waitFor(async () => me.frames.some((f) => f.resource_type === 'ips' && f.object?.meta?.name === 'changed'), 5000, 'ip edit frame');
    });

    test('profile edits and clone jobs are notified with their objects', async () => {
      const p = await t.call('PUT', '/profile/', { company: 'Websocket Ltd' });
      assert.equal(p.status, 200);
      const pf = await waitFor(
        async () => me.frames.find((f) => f.resource_type === 'profile' && f.object?.company === 'Websocket Ltd'),
        5000,
        'profile frame',
      );
      assert.equal(pf.resource_uri, '/api/2.0/profile/');
      const d = (await t.call('POST', '/drives/', { name: 'ws-clone-disk', size: 1073741824, media: 'disk' })).body.objects[0];
      await waitFor(async () => (await t.call('GET', `/drives/${d.uuid}/`)).body.status === 'unmounted', 5000, 'drive created');
      const s = (await t.call('POST', '/servers/', minimalServer('ws-clone', { drives: [{ drive: d.uuid, device: 'virtio', dev_channel: '0:0' }] }))).body
        .objects[0];
      assert.equal((await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, {})).status, 202);
      const jf = await waitFor(async () => me.frames.find((f) => f.resource_type === 'jobs' && f.object), 5000, 'job frame');
      assert.equal(jf.resource_uri, `/api/2.0/jobs/${jf.object.uuid}/`);
      assert.equal((await t.call('GET', `/jobs/${jf.object.uuid}/`)).status, 200);
    });

    test("another account's changes never arrive, and it hears only its own", async () => {
      const theirs = await connect(t, await asyncCookie(other()), '/api/2.0/websocket');
      try {
        const s = (await other()('POST', '/servers/', minimalServer('theirs'))).body.objects[0];
        await other()('PUT', `/servers/${s.uuid}/`, { name: 'theirs-renamed' });
        await other()('POST', '/subscriptions/', [{ resource: 'ip', period: '1 month' }]);
        await waitFor(async () => theirs.frames.some((f) => f.object?.name === 'theirs-renamed'), 5000, 'their own frame');
        // A change of mine after theirs: once its frame is here, any frame of theirs would have been too.
        const mine = (await t.call('POST', '/servers/', minimalServer('sentinel'))).body.objects[0];
        await waitFor(async () => me.frames.some((f) => f.object?.uuid === mine.uuid), 5000, 'sentinel frame');
        await waitFor(async () => theirs.frames.length > 0 && theirs.frames.some((f) => f.resource_type === 'ips'), 5000, 'their ip frame');
        const owner = (f: any) => f.object?.owner?.uuid;
        const myUuid = (await t.running.svc.store.users.byEmail('admin@example.com'))!.uuid;
        assert.ok(
          me.frames.every((f) => !f.object?.owner || owner(f) === myUuid),
          'a frame of another account reached me',
        );
        const theirUris = new Set(theirs.frames.map((f) => f.resource_uri));
        assert.ok(!me.frames.some((f) => theirUris.has(f.resource_uri)), 'a change of theirs reached me');
        assert.ok(!me.frames.some((f) => f.resource_uri === `/api/2.0/servers/${s.uuid}/`));
        assert.ok(!theirs.frames.some((f) => f.object?.uuid === mine.uuid));
      } finally {
        theirs.close();
      }
    });

    test('no cookie, a wrong or a non-async token, or another path: the upgrade is refused', async () => {
      const ws = t.url.replace(/^http/, 'ws');
      assert.equal(await refusal(`${ws}/websocket`), 401);
      assert.equal(await refusal(`${ws}/websocket`, { cookie: 'async_auth=forged' }), 401);
      const login = await t.call('POST', '/accounts/action/?do=login', { username: 'admin@example.com', password: 'admin-password' });
      const sessionid = /sessionid=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
      assert.equal(await refusal(`${ws}/websocket`, { cookie: `async_auth=${sessionid}` }), 401);
      const basic = `Basic ${Buffer.from('admin@example.com:admin-password').toString('base64')}`;
      assert.equal(await refusal(`${ws}/websocket`, { authorization: basic }), 401);
      assert.equal(await refusal(`${ws}/elsewhere`, { cookie: await asyncCookie(t.call) }), 404);
    });

    test('locations: this installation, with its API and websocket URLs', async () => {
      const r = await fetch(`${t.api}/locations/`);
      assert.equal(r.status, 200);
      const body = (await r.json()) as any;
      assert.deepEqual(body.meta, { limit: 0, offset: 0, total_count: 1 });
      const loc = body.objects[0];
      const port = new URL(t.url).port;
      assert.equal(loc.api_endpoint, `http://127.0.0.1:${port}/api/2.0/`);
      assert.equal(loc.websocket_url, `ws://127.0.0.1:${port}/websocket`);
      assert.equal(loc.upload_url, loc.api_endpoint);
      for (const k of [
        'alternative_frontend_url',
        'country_code',
        'default_frontend_signup_url',
        'default_frontend_url',
        'display_name',
        'documentation_url',
        'id',
      ])
        assert.equal(typeof loc[k], 'string', k);
      const c = await connect(t, await asyncCookie(t.call), new URL(loc.websocket_url).pathname);
      c.close();
    });
  });
}

describe(
  'websocket notifications across API nodes [postgres]',
  { skip: !process.env.OPENSIGMA_TEST_POSTGRES_URL && 'needs OPENSIGMA_TEST_POSTGRES_URL' },
  () => {
    let a: TestServer;
    let b: TestServer;
    before(async () => {
      a = await startServer({}, { url: process.env.OPENSIGMA_TEST_POSTGRES_URL! });
      b = await startServer({ OPENSIGMA_DATABASE_URL: a.config.databaseUrl!, OPENSIGMA_ROLE: 'api' });
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    test('a client on one node hears of a change made through another', async () => {
      const c = await connect(b, await asyncCookie(b.call));
      try {
        const s = (await a.call('POST', '/servers/', minimalServer('elsewhere'))).body.objects[0];
        const f = await waitFor(async () => c.frames.find((x) => x.object?.uuid === s.uuid), 5000, 'frame from the other node');
        assert.equal(f.object.name, 'elsewhere');
      } finally {
        c.close();
      }
    });
  },
);
