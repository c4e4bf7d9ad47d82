import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

for (const db of databases()) {
  describe(`tags [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    const tag = async (name: string, extra: Record<string, unknown> = {}) => {
      const r = await t.call('POST', '/tags/', { objects: [{ name, ...extra }] });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.objects[0];
    };
    const server = async (name: string) => (await t.call('POST', '/servers/', minimalServer(name))).body.objects[0];
    const drive = async (name: string) => {
      const uuid = (await t.call('POST', '/drives/', { name, size: GiB, media: 'disk' })).body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid as string;
    };

    test('CRUD: create, get, list, detail, edit name and meta, delete', async () => {
      const a = await tag('alpha', { meta: { k: 'v' } });
      assert.deepEqual(Object.keys(a).sort(), ['meta', 'name', 'owner', 'resource_uri', 'resources', 'uuid']);
      assert.deepEqual(a.resources, []);
      assert.deepEqual(a.meta, { k: 'v' });
      assert.equal(a.resource_uri, `/api/2.0/tags/${a.uuid}/`);
      assert.deepEqual((await t.call('GET', `/tags/${a.uuid}/`)).body, a);
      const list = await t.call('GET', '/tags/?name=alpha');
      assert.deepEqual(list.body.objects, [a]);
      assert.deepEqual((await t.call('GET', '/tags/detail/?name__contains=lph')).body.objects, [a]);
      const put = await t.call('PUT', `/tags/${a.uuid}/`, { name: 'beta', meta: {} });
      assert.equal(put.status, 200);
      assert.equal(put.body.name, 'beta');
      assert.deepEqual(put.body.meta, {});
      assert.equal((await t.call('DELETE', `/tags/${a.uuid}/`)).status, 204);
      assert.equal((await t.call('GET', `/tags/${a.uuid}/`)).status, 404);
      assert.equal((await t.call('DELETE', `/tags/${a.uuid}/`)).status, 404);
    });

    test('resources of any kind, in both directions; tag= and tag__name= filters; tag-scoped listings', async () => {
      const s1 = await server('tagged-1');
      const s2 = await server('tagged-2');
      const d = await drive('tagged-d');
      const g = await tag('group', { resources: [s1.uuid, { uuid: d }] });
      const kinds = g.resources.map((r: any) => `${r.res_type}/${r.uuid}`).sort();
      assert.deepEqual(kinds, [`drives/${d}`, `servers/${s1.uuid}`].sort());
      const member = g.resources.find((r: any) => r.uuid === s1.uuid);
      assert.deepEqual(Object.keys(member).sort(), ['owner', 'res_type', 'resource_uri', 'uuid']);
      assert.equal(member.resource_uri, `/api/2.0/servers/${s1.uuid}/`);
      // the resource shows the tag
      assert.deepEqual((await t.call('GET', `/servers/${s1.uuid}/`)).body.tags, [{ resource_uri: `/api/2.0/tags/${g.uuid}/`, uuid: g.uuid }]);
      assert.deepEqual(
        (await t.call('GET', `/drives/${d}/`)).body.tags.map((x: any) => x.uuid),
        [g.uuid],
      );
      // filters
      assert.deepEqual(
        (await t.call('GET', `/servers/?tag=${g.uuid}`)).body.objects.map((x: any) => x.uuid),
        [s1.uuid],
      );
      assert.deepEqual(
        (await t.call('GET', '/servers/?tag__name=group')).body.objects.map((x: any) => x.uuid),
        [s1.uuid],
      );
      assert.deepEqual(
        (await t.call('GET', `/drives/detail/?tag=${g.uuid}`)).body.objects.map((x: any) => x.uuid),
        [d],
      );
      // tag-scoped listings
      const scoped = await t.call('GET', `/tags/${g.uuid}/servers/`);
      assert.equal(scoped.status, 200);
      assert.deepEqual(scoped.body.meta, { limit: 20, offset: 0, total_count: 1 });
      assert.deepEqual(Object.keys(scoped.body.objects[0]).sort(), ['name', 'owner', 'resource_uri', 'runtime', 'status', 'uuid']);
      const scopedDetail = await t.call('GET', `/tags/${g.uuid}/servers/detail/`);
      assert.equal(scopedDetail.body.objects[0].vnc_password, 'testserver');
      assert.deepEqual(
        (await t.call('GET', `/tags/${g.uuid}/drives/`)).body.objects.map((x: any) => x.uuid),
        [d],
      );
      assert.equal((await t.call('GET', `/tags/${g.uuid}/drives/detail/`)).body.objects[0].name, 'tagged-d');
      assert.deepEqual((await t.call('GET', `/tags/${g.uuid}/ips/`)).body.objects, []);
      assert.deepEqual((await t.call('GET', `/tags/${g.uuid}/vlans/detail/`)).body.objects, []);

      // PUT resources replaces the members; the dropped server loses the tag
      const put = await t.call('PUT', `/tags/${g.uuid}/`, { name: 'group', resources: [s2.uuid, d] });
      assert.equal(put.status, 200);
      assert.deepEqual(put.body.resources.map((r: any) => r.uuid).sort(), [s2.uuid, d].sort());
      assert.deepEqual((await t.call('GET', `/servers/${s1.uuid}/`)).body.tags, []);
      assert.deepEqual(
        (await t.call('GET', `/servers/?tag=${g.uuid}`)).body.objects.map((x: any) => x.uuid),
        [s2.uuid],
      );

      // tagging from the resource side shows on the tag
      const full = (await t.call('GET', `/servers/${s1.uuid}/`)).body;
      const edit = await t.call('PUT', `/servers/${s1.uuid}/`, { ...full, tags: [g.uuid] });
      assert.equal(edit.status, 200);
      assert.equal((await t.call('GET', `/tags/${g.uuid}/`)).body.resources.length, 3);

      // deleting the tag takes it off every resource
      assert.equal((await t.call('DELETE', `/tags/${g.uuid}/`)).status, 204);
      for (const u of [s1.uuid, s2.uuid]) assert.deepEqual((await t.call('GET', `/servers/${u}/`)).body.tags, []);
      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.tags, []);
      assert.equal((await t.call('GET', `/servers/?tag=${g.uuid}`)).body.meta.total_count, 0);
      assert.equal((await t.call('GET', `/tags/${g.uuid}/servers/`)).status, 404);
    });

    test('bad input changes nothing: missing name, wrong types, unknown or foreign resources, another account', async () => {
      const s = await server('bad-tag-target');
      const before = (await t.call('GET', '/tags/?limit=0')).body.meta.total_count;
      for (const body of [
        { objects: [{}] },
        { objects: [{ name: '' }] },
        { objects: [{ name: ['x'] }] },
        { objects: [{ name: 'x', meta: 'nope' }] },
        { objects: [{ name: 'x', resources: 'nope' }] },
        { objects: [{ name: 'x', resources: ['00000000-0000-4000-8000-000000000000'] }] },
        {
          objects: [
            { name: 'ok', resources: [s.uuid] },
            { name: 'x', resources: [42] },
          ],
        },
        'not json at all',
      ]) {
        const r = await t.call('POST', '/tags/', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.ok(Array.isArray(r.body), JSON.stringify(r.body));
      }
      assert.equal((await t.call('GET', '/tags/?limit=0')).body.meta.total_count, before);
      assert.deepEqual((await t.call('GET', `/servers/${s.uuid}/`)).body.tags, []);

      await t.running.svc.store.users.create('eve-tags@example.com', 'eve-tags-pw');
      const eve = t.as('eve-tags@example.com', 'eve-tags-pw');
      // Eve cannot tag my server, nor see, edit or delete my tag
      assert.equal((await eve('POST', '/tags/', { name: 'grab', resources: [s.uuid] })).status, 400);
      const mine = await tag('mine', { resources: [s.uuid] });
      assert.equal((await eve('GET', `/tags/${mine.uuid}/`)).status, 404);
      assert.equal((await eve('PUT', `/tags/${mine.uuid}/`, { name: 'x' })).status, 404);
      assert.equal((await eve('DELETE', `/tags/${mine.uuid}/`)).status, 404);
      assert.equal((await eve('GET', `/tags/${mine.uuid}/servers/`)).status, 404);
      assert.equal((await t.call('GET', `/tags/${mine.uuid}/`)).body.resources.length, 1);
      const bad = await t.call('PUT', `/tags/${mine.uuid}/`, { resources: [s.uuid, 'nope'] });
      assert.equal(bad.status, 400);
      assert.equal((await t.call('GET', `/tags/${mine.uuid}/`)).body.resources.length, 1);
      assert.equal((await t.call('GET', '/tags/00000000-0000-4000-8000-000000000000/')).status, 404);
    });
  });
}
