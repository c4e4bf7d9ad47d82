import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

/**
 * The notification websocket of a grantee: he hears of changes to the owner's objects an ACL lets him see, each as
 * his own GET shows it, and of nothing else the owner has. When his grant ends he hears once that the object is gone
 * for him, and then nothing.
 */
const BOB = { email: 'bob@example.com', password: 'bob-password-1' };

async function listen(t: TestServer, call: TestServer['call']): Promise<{ frames: any[]; close(): void }> {
  const r = await call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/websocket`, { headers: { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]! } });
  const frames: any[] = [];
  ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { frames, close: () => ws.close() };
}

for (const db of databases()) {
  describe(`a grantee hears of changes to what is shared with him [${db.name}]`, () => {
    let t: TestServer;
    let bob: TestServer['call'];
    let shared = '';
    let secret = '';
    let acl = '';
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
      bob = t.as(BOB.email, BOB.password);
      const tag = (await t.call('POST', '/tags/', { name: 'for-bob' })).body.objects[0].uuid;
      shared = (await t.call('POST', '/servers/', minimalServer('shared-box', { tags: [tag] }))).body.objects[0].uuid;
      secret = (await t.call('POST', '/servers/', minimalServer('secret-box'))).body.objects[0].uuid;
      const r = await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: BOB.email }], rules: [{ permission: 'LIST' }], tags: [tag] });
      assert.equal(r.status, 201, r.text);
      acl = r.body.objects[0].uuid;
    });
    after(async () => t?.close());

    test("the owner's start of a shared server reaches the grantee as his GET shows it; an unshared one does not", async () => {
      const heard = await listen(t, bob);
      try {
        await t.call('POST', `/servers/${secret}/action/?do=start`);
        await waitForStatus(t, secret, 'running');
        await t.call('POST', `/servers/${shared}/action/?do=start`);
        await waitForStatus(t, shared, 'running');
        await waitFor(async () => heard.frames.some((f) => f.object?.status === 'running'), 10000, 'the running frame');
        assert.ok(
          heard.frames.every((f) => f.resource_uri === `/api/2.0/servers/${shared}/`),
          `only the shared server: ${JSON.stringify(heard.frames.map((f) => f.resource_uri))}`,
        );
        const last = heard.frames.at(-1).object;
        const seen = (await bob('GET', `/servers/${shared}/`)).body;
        assert.deepEqual(last, seen, 'the frame shows what his GET shows');
        assert.notEqual(last.vnc_password, (await t.call('GET', `/servers/${shared}/`)).body.vnc_password, 'not what the owner sees');
      } finally {
        heard.close();
      }
    });

    test('once the grant ends, he hears that the server is gone for him, once, and nothing after', async () => {
      const heard = await listen(t, bob);
      try {
        await t.call('POST', `/servers/${shared}/action/?do=stop`);
        await waitForStatus(t, shared, 'stopped');
        await waitFor(async () => heard.frames.some((f) => f.object?.status === 'stopped'), 10000, 'the stopped frame');
        assert.equal((await t.call('DELETE', `/acls/${acl}/`)).status, 204);
        await t.call('POST', `/servers/${shared}/action/?do=start`);
        await waitForStatus(t, shared, 'running');
        await t.call('POST', `/servers/${shared}/action/?do=stop`);
        await waitForStatus(t, shared, 'stopped');
        await waitFor(async () => heard.frames.some((f) => !f.object), 10000, 'the frame saying it is gone');
        // A change the owner makes after the last frame, heard by the owner: by then the grantee would have heard too.
        const owner = await listen(t, t.call);
        await t.call('PUT', `/servers/${shared}/`, { ...minimalServer('shared-box'), name: 'renamed' });
        await waitFor(async () => owner.frames.some((f) => f.object?.name === 'renamed'), 10000, "the owner's frame");
        owner.close();
        const after = heard.frames.slice(heard.frames.findIndex((f) => !f.object));
        assert.deepEqual(after, [{ resource_type: 'servers', resource_uri: `/api/2.0/servers/${shared}/` }]);
      } finally {
        heard.close();
      }
    });
  });
}
