import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from 'typebox';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { WireCache, WireObjects } from '../src/api/wire.ts';
import { ListEnvelope } from '../src/api/schemas.ts';

// GETs and list pages reuse the serialised answer of a server that has not changed (the wire cache); `?fields=` of
// every key is always rendered afresh, so it is the reference the reused bytes are held to.
const B = { email: 'bob-wire@example.com', password: 'bob-wire-password' };

for (const db of databases()) {
  describe(`reused server answers are never stale [${db.name}]`, () => {
    let t: TestServer;
    let tag: string;
    let shared: string;
    let plain: string;

    const fresh = async (path: string) => {
      const keys = Object.keys((await t.call('GET', `/servers/${shared}/`)).body);
      return (await t.call('GET', `${path}${path.includes('?') ? '&' : '?'}fields=${keys.join(',')}`)).body;
    };
    const listed = async (uuid: string) => (await t.call('GET', '/servers/detail/?limit=0')).body.objects.find((s: any) => s.uuid === uuid);

    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create(B.email, B.password);
      tag = (await t.call('POST', '/tags/', { name: 'wire' })).body.objects[0].uuid;
      const nic = [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }];
      shared = (await t.call('POST', '/servers/', minimalServer('wire-shared', { tags: [tag], nics: nic }))).body.objects[0].uuid;
      plain = (await t.call('POST', '/servers/', minimalServer('wire-plain', { nics: nic }))).body.objects[0].uuid;
    });
    after(async () => t?.close());

    test('a GET and a list page answer the same bytes each time, and the same objects as a fresh rendering', async () => {
      for (const uuid of [shared, plain]) {
        const first = await t.call('GET', `/servers/${uuid}/`);
        const again = await t.call('GET', `/servers/${uuid}/`);
        assert.equal(first.status, 200);
        assert.equal(first.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.equal(again.text, first.text);
        assert.deepEqual(first.body, await fresh(`/servers/${uuid}/`));
      }
      const page = await t.call('GET', '/servers/detail/?limit=0');
      assert.equal((await t.call('GET', '/servers/detail/?limit=0')).text, page.text);
      assert.deepEqual(page.body.meta, { limit: 0, offset: 0, total_count: 2 });
      assert.deepEqual(page.body, await fresh('/servers/detail/?limit=0'));
      const gz = await t.call('GET', '/servers/detail/?limit=0', undefined, { 'accept-encoding': 'gzip' });
      assert.equal(gz.headers.get('content-encoding'), 'gzip');
      assert.deepEqual(gz.body, page.body);
    });

    test('an edit shows at once in the GET and the list', async () => {
      const before = (await t.call('GET', `/servers/${plain}/`)).body;
      await t.call('GET', '/servers/detail/?limit=0');
      const put = await t.call('PUT', `/servers/${plain}/`, { ...before, name: 'wire-renamed', meta: { k: 'v' } });
      assert.equal(put.status, 200, put.text);
      const after = (await t.call('GET', `/servers/${plain}/`)).body;
      assert.equal(after.name, 'wire-renamed');
      assert.deepEqual(after.meta, { k: 'v' });
      assert.equal((await listed(plain)).name, 'wire-renamed');
    });

    test('a start, the growing counters of the running server and its stop show at once', async () => {
      await t.call('GET', `/servers/${plain}/`);
      assert.equal((await t.call('POST', `/servers/${plain}/action/?do=start`)).status, 202);
      await waitForStatus(t, plain, 'running');
      const running = (await t.call('GET', `/servers/${plain}/`)).body;
      assert.ok(running.runtime, 'runtime shown while running');
      assert.equal((await listed(plain)).status, 'running');
      // Counters change in the runtime column alone, not in the document: the reused answer must notice.
      const recv = running.runtime.nics[0].io.bytes_recv;
      await waitFor(async () => (await t.call('GET', `/servers/${plain}/`)).body.runtime.nics[0].io.bytes_recv > recv, 15000, 'counters to grow');
      assert.ok((await listed(plain)).runtime.nics[0].io.bytes_recv > recv);
      assert.equal((await t.call('POST', `/servers/${plain}/action/?do=stop`)).status, 202);
      await waitForStatus(t, plain, 'stopped');
      const stopped = (await t.call('GET', `/servers/${plain}/`)).body;
      assert.equal(stopped.runtime, null);
      assert.equal((await listed(plain)).runtime, null);
    });

    test('sharing a server shows its grantees to the owner at once; the grantee gets its own view', async () => {
      assert.deepEqual((await t.call('GET', `/servers/${shared}/`)).body.grantees, []);
      await t.call('GET', '/servers/detail/?limit=0');
      const acl = await t.call('POST', '/acls/', { name: 'bob', grantees: [{ email: B.email }], rules: [{ permission: 'LIST' }], tags: [tag] });
      assert.equal(acl.status, 201, acl.text);
      assert.equal((await t.call('GET', `/servers/${shared}/`)).body.grantees.length, 1);
      assert.equal((await listed(shared)).grantees.length, 1);
      const bob = t.as(B.email, B.password);
      const seen = (await bob('GET', `/servers/${shared}/`)).body;
      assert.deepEqual(seen.tags, []);
      assert.deepEqual(seen.permissions, ['LIST']);
      assert.deepEqual(
        (await bob('GET', '/servers/detail/?limit=0')).body.objects.map((s: any) => [s.uuid, s.tags]),
        [[shared, []]],
      );
      // ...and the owner still sees the tags the grantee's view hides.
      assert.deepEqual((await t.call('GET', `/servers/${shared}/`)).body.tags, [{ resource_uri: `/api/2.0/tags/${tag}/`, uuid: tag }]);
    });
  });
}

for (const db of databases()) {
  describe(`a wire cache smaller than a page still answers every server right [${db.name}]`, () => {
    let t: TestServer;
    const uuids: string[] = [];

    before(async () => {
      // About two servers' worth: every page evicts what the pages before it reused, while they are being answered.
      t = await startServer({ OPENSIGMA_WIRE_CACHE_MB: '0.002' }, db);
      for (let i = 0; i < 4; i++) uuids.push((await t.call('POST', '/servers/', minimalServer(`small-${i}`))).body.objects[0].uuid);
    });
    after(async () => t?.close());

    test('concurrent pages, GETs and edits', async () => {
      for (let round = 0; round < 12; round++) {
        const renamed = uuids[round % uuids.length]!;
        const before = (await t.call('GET', `/servers/${renamed}/`)).body;
        const answers = await Promise.all([
          ...Array.from({ length: 8 }, (_, i) => t.call('GET', `/servers/detail/?limit=2&offset=${i % 3}`)),
          ...uuids.map((u) => t.call('GET', `/servers/${u}/`)),
          t.call('PUT', `/servers/${renamed}/`, { ...before, name: `small-renamed-${round}` }),
        ]);
        for (const a of answers) assert.equal(a.status, 200, a.text);
        const page = (await t.call('GET', '/servers/detail/?limit=0')).body.objects;
        assert.deepEqual(
          page.map((s: any) => s.uuid),
          uuids,
        );
        assert.equal(page[round % uuids.length].name, `small-renamed-${round}`);
        const keys = Object.keys(page[0]).join(',');
        assert.deepEqual(page, (await t.call('GET', `/servers/detail/?limit=0&fields=${keys}`)).body.objects);
      }
    });
  });
}

test('an entry evicted while its page is being answered still answers that page', async () => {
  const Item = Type.Object({ uuid: Type.String(), name: Type.String() });
  const row = (uuid: string, name: string) => ({ seq: 1, uuid, owner: 'me', status: 'stopped', version: 1, row: {}, doc: { uuid, name, tags: [] } });
  const cache = new WireCache(60); // room for two entries
  const wire = new WireObjects<{ uuid: string; name: string; tags: unknown[] }>(
    Item,
    ListEnvelope(Item),
    (s) => ({ uuid: s.uuid, name: s.doc.name }),
    async (_a, objs) => new Map(objs.map((o) => [o.uuid, {}])),
    cache,
  );
  const actor = { user: 'me' };
  const read = async () => ({ total: 1, items: [row('a', 'first')] });
  await wire.list(actor, { limit: 1, offset: 0 }, read); // cached
  const answer = await wire.list(actor, { limit: 1, offset: 0 }, async (reusable) => {
    assert.equal(reusable!({ uuid: 'a', version: 1, status: 'stopped', busy: false }), true);
    // Another request fills the cache meanwhile, evicting a's entry.
    await wire.list(actor, { limit: 2, offset: 0 }, async () => ({ total: 2, items: [row('b', 'second'), row('c', 'third')] }));
    const keyOnly = {
      ...row('a', 'first'),
      get doc(): never {
        throw new Error('the document of a was not read');
      },
    };
    return { total: 1, items: [keyOnly] };
  });
  assert.deepEqual(JSON.parse(String(answer.body)), { meta: { limit: 1, offset: 0, total_count: 1 }, objects: [{ uuid: 'a', name: 'first' }] });
});
