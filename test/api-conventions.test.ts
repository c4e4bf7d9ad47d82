import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import http from 'node:http';
import { ADMIN, databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { buildApp } from '../src/api/app.ts';

type Call = TestServer['call'];

async function freshUser(t: TestServer, tag: string): Promise<Call> {
  const email = `${tag}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  await t.running.svc.store.users.create(email, 'password-1');
  return t.as(email, 'password-1');
}

async function newDrive(call: Call, media = 'disk'): Promise<string> {
  const r = await call('POST', '/drives/', { name: 'd', size: 1073741824, media });
  assert.equal(r.status, 201, r.text);
  const uuid = r.body.objects[0].uuid;
  await waitFor(async () => (await call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
  return uuid;
}

/** A raw request (no fetch decoding), to see headers and bytes as they travel. */
function raw(t: TestServer, method: string, p: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const u = new URL(`${t.api}${p}`);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

for (const db of databases()) {
  describe(`API conventions [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('every method works with and without the trailing slash, never redirecting', async () => {
      for (const slash of ['', '/']) {
        const c = await t.call('POST', `/servers${slash}`, minimalServer('slash'));
        assert.equal(c.status, 201, `POST /servers${slash}`);
        const uuid = c.body.objects[0].uuid;
        assert.equal((await t.call('GET', `/servers${slash}`)).status, 200);
        assert.equal((await t.call('GET', `/servers/detail${slash}`)).status, 200);
        assert.equal((await t.call('GET', `/servers/${uuid}${slash}`)).status, 200);
        assert.equal((await t.call('PUT', `/servers/${uuid}${slash}`, { name: 'renamed' })).status, 200);
        assert.equal((await t.call('POST', `/servers/${uuid}/action${slash}?do=open_vnc`)).status, 403);
        assert.equal((await t.call('GET', `/servers/schema${slash}`)).status, 200);
        assert.equal((await t.call('DELETE', `/servers/${uuid}${slash}`)).status, 204);
        const r = await fetch(`${t.api}/servers`, {
          redirect: 'manual',
          headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}` },
        });
        assert.equal(r.status, 200);
      }
      assert.equal((await t.call('GET', '')).status, 404);
    });

    test('list envelope: default limit 20, limit=0 means all and is echoed, offset, total_count', async () => {
      const call = await freshUser(t, 'paging');
      const made = await call('POST', '/servers/', { objects: Array.from({ length: 25 }, (_, i) => minimalServer(`s${String(i).padStart(2, '0')}`)) });
      assert.equal(made.status, 201);
      const def = await call('GET', '/servers/');
      assert.deepEqual(Object.keys(def.body).sort(), ['meta', 'objects']);
      assert.deepEqual(def.body.meta, { limit: 20, offset: 0, total_count: 25 });
      assert.equal(def.body.objects.length, 20);
      const all = await call('GET', '/servers/?limit=0');
      assert.deepEqual(all.body.meta, { limit: 0, offset: 0, total_count: 25 });
      assert.equal(all.body.objects.length, 25);
      const page = await call('GET', '/servers/detail/?limit=5&offset=22');
      assert.deepEqual(page.body.meta, { limit: 5, offset: 22, total_count: 25 });
      assert.deepEqual(
        page.body.objects.map((s: any) => s.name),
        ['s22', 's23', 's24'],
      );
      const offsetOnly = await call('GET', '/servers/?limit=0&offset=24');
      assert.deepEqual(
        offsetOnly.body.objects.map((s: any) => s.name),
        ['s24'],
      );
      assert.equal((await call('GET', '/servers/?limit=-1')).status, 400);
      assert.equal((await call('GET', '/servers/?offset=x')).status, 400);
    });

    test('short list items are exactly name, owner, resource_uri, runtime, status, uuid; detail items are full; fields= selects', async () => {
      const call = await freshUser(t, 'short');
      await call('POST', '/servers/', minimalServer('one'));
      const short = await call('GET', '/servers/');
      assert.deepEqual(Object.keys(short.body.objects[0]).sort(), ['name', 'owner', 'resource_uri', 'runtime', 'status', 'uuid']);
      const detail = await call('GET', '/servers/detail/');
      assert.ok('vnc_password' in detail.body.objects[0] && 'nics' in detail.body.objects[0]);
      const get = await call('GET', `/servers/${short.body.objects[0].uuid}/`);
      assert.deepEqual(detail.body.objects[0], get.body);
      const some = await call('GET', '/servers/detail/?fields=uuid,status');
      assert.deepEqual(Object.keys(some.body.objects[0]).sort(), ['status', 'uuid']);
      const one = await call('GET', `/servers/${short.body.objects[0].uuid}/?fields=name`);
      assert.deepEqual(one.body, { name: 'one' });
    });

    test('create takes {"objects": [...]}, a bare list or a bare object, and always answers 201 {"objects": [...]}', async () => {
      for (const body of [{ objects: [minimalServer('a'), minimalServer('b')] }, [minimalServer('a'), minimalServer('b')], minimalServer('a')]) {
        const r = await t.call('POST', '/servers/', body);
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(Object.keys(r.body), ['objects']);
        assert.equal(r.body.objects.length, Array.isArray(body) ? 2 : 'objects' in body ? 2 : 1);
        assert.equal(r.body.objects[0].status, 'stopped');
      }
    });

    test('references are accepted as a uuid, a resource URI or an object, and rendered as {resource_uri, uuid}', async () => {
      const drives = [await newDrive(t.call), await newDrive(t.call), await newDrive(t.call), await newDrive(t.call)];
      const tag = (await t.call('POST', '/tags/', { name: 'ref' })).body.objects[0].uuid;
      const forms = [drives[0], `/api/2.0/drives/${drives[1]}/`, { uuid: drives[2] }, { resource_uri: `/api/2.0/drives/${drives[3]}/` }];
      const r = await t.call('POST', '/servers/', {
        ...minimalServer('refs'),
        drives: forms.map((drive, i) => ({ drive, device: 'virtio', dev_channel: `0:${i}` })),
        tags: [{ uuid: tag, resource_uri: `/api/2.0/tags/${tag}/` }],
      });
      assert.equal(r.status, 201, r.text);
      const s = r.body.objects[0];
      assert.deepEqual(
        s.drives.map((d: any) => d.drive),
        drives.map((uuid) => ({ resource_uri: `/api/2.0/drives/${uuid}/`, uuid })),
      );
      assert.deepEqual(s.tags, [{ resource_uri: `/api/2.0/tags/${tag}/`, uuid: tag }]);
      // The GET representation sent back as is (objects for references) is accepted.
      const back = await t.call('PUT', `/servers/${s.uuid}/`, s);
      assert.equal(back.status, 200, back.text);
      assert.deepEqual(back.body.drives, s.drives);
    });

    test('numeric strings are accepted on input; numbers come back', async () => {
      const r = await t.call('POST', '/servers/', { name: 'strings', cpu: '2000', mem: '536870912', smp: '2', vnc_password: 'x' });
      assert.equal(r.status, 201, r.text);
      const s = r.body.objects[0];
      assert.equal(s.cpu, 2000);
      assert.equal(s.mem, 536870912);
      assert.equal(s.smp, 2);
      const d = await t.call('POST', '/drives/', { name: 'd', size: '1073741824', media: 'disk' });
      assert.equal(d.body.objects[0].size, 1073741824);
    });

    test('action bodies may be empty, null or {}', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('bodies'))).body.objects[0];
      for (const body of [undefined, 'null', {}]) {
        const start = await t.call('POST', `/servers/${s.uuid}/action/?do=start`, body);
        assert.equal(start.status, 202, start.text);
        await waitForStatus(t, s.uuid, 'running');
        const stop = await t.call('POST', `/servers/${s.uuid}/action/?do=stop`, body);
        assert.equal(stop.status, 202, stop.text);
        await waitForStatus(t, s.uuid, 'stopped');
      }
      const bad = await t.call('POST', `/servers/${s.uuid}/action/?do=start`, '[1]');
      assert.equal(bad.status, 400);
      const noDo = await t.call('POST', `/servers/${s.uuid}/action/`);
      assert.equal(noDo.status, 400);
      assert.equal(noDo.body[0].error_point, 'do');
      const unknown = await t.call('POST', `/servers/${s.uuid}/action/?do=dance`);
      assert.equal(unknown.status, 400);
    });

    test('OPTIONS answers the methods as its body and in Allow', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('opts'))).body.objects[0];
      const list = await t.call('OPTIONS', '/servers/');
      assert.equal(list.status, 200);
      assert.deepEqual(list.text.split(',').sort(), ['GET', 'POST']);
      assert.equal(list.headers.get('allow'), list.text);
      const one = await t.call('OPTIONS', `/servers/${s.uuid}`);
      assert.deepEqual(one.text.split(',').sort(), ['DELETE', 'GET', 'PUT']);
      const action = await t.call('OPTIONS', `/servers/${s.uuid}/action/`);
      assert.equal(action.text, 'POST');
    });

    test('gzip when asked, identity otherwise', async () => {
      const call = await freshUser(t, 'gzip');
      await call('POST', '/servers/', { objects: Array.from({ length: 5 }, (_, i) => minimalServer(`z${i}`)) });
      const zipped = await raw(t, 'GET', '/servers/detail/', { 'accept-encoding': 'gzip' });
      assert.equal(zipped.status, 200);
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      const body = JSON.parse(zlib.gunzipSync(zipped.body).toString('utf8'));
      assert.ok(Array.isArray(body.objects));
      const plain = await raw(t, 'GET', '/servers/detail/');
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.ok(JSON.parse(plain.body.toString('utf8')).meta);
    });

    test('Accept: JSON or anything JSON-compatible; other types are 406 unless ?format=json', async () => {
      for (const accept of ['application/json', '*/*', 'application/json, application/xml', 'text/html,*/*;q=0.8'])
        assert.equal((await t.call('GET', '/servers/', undefined, { accept })).status, 200, accept);
      const xml = await t.call('GET', '/servers/', undefined, { accept: 'application/xml' });
      assert.equal(xml.status, 406);
      assert.equal(xml.body[0].error_type, 'validation');
      assert.equal((await t.call('GET', '/servers/?format=json', undefined, { accept: 'application/xml' })).status, 200);
    });

    test('X-Request-ID on every answer, errors included; a given one is echoed', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('rid'))).body.objects[0];
      const answers = [
        await t.call('GET', '/servers/'),
        await t.call('GET', `/servers/${s.uuid}/`),
        await t.call('GET', '/servers/00000000-0000-4000-8000-000000000000/'),
        await t.call('GET', '/nothing-here/'),
        await t.call('PATCH', '/servers/'),
        await t.call('OPTIONS', '/servers/'),
        await t.call('POST', '/servers/', '{bad json'),
        await t.call('DELETE', `/servers/${s.uuid}/`),
        await t.as('nobody@example.com', 'x')('GET', '/servers/'),
        await t.call('GET', `${t.url}/healthz`),
      ];
      for (const a of answers) assert.match(a.headers.get('x-request-id') ?? '', /^[\w.-]+$/, `status ${a.status}`);
      const mine = await t.call('GET', '/servers/', undefined, { 'x-request-id': 'client-id-42' });
      assert.equal(mine.headers.get('x-request-id'), 'client-id-42');
    });

    test('JSON answers are application/json; charset=utf-8, DELETE answers 204 with an empty text/html body', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('ct'))).body.objects[0];
      assert.equal((await t.call('GET', '/servers/')).headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal((await t.call('GET', '/nothing/')).headers.get('content-type'), 'application/json; charset=utf-8');
      const del = await t.call('DELETE', `/servers/${s.uuid}/`);
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assert.equal(del.headers.get('content-type'), 'text/html; charset=utf-8');
    });

    test('GET /servers/schema/ is served', async () => {
      const r = await t.call('GET', '/servers/schema/');
      assert.equal(r.status, 200);
      assert.equal(r.body.default_limit, 20);
      assert.deepEqual(r.body.filtering, { name: 'exact', name__contains: 'exact', tag: 'exact', uuid: 'exact' });
      assert.ok(r.body.fields.vnc_password.required);
    });

    test('/api/2.0/openapi.json is an OpenAPI 3 document covering every route', async () => {
      const r = await fetch(`${t.api}/openapi.json`);
      assert.equal(r.status, 200);
      const doc = (await r.json()) as any;
      assert.match(doc.openapi, /^3\./);
      const { routes } = await buildApp(t.running.svc, { logger: false });
      const documented = new Map(Object.entries(doc.paths as Record<string, Record<string, unknown>>).map(([p, ops]) => [p.replace(/\/$/, ''), ops]));
      const registered = routes.table.entries();
      assert.ok(registered.length > 10);
      for (const [pattern, methods] of registered) {
        const p = pattern.replace(/:([A-Za-z_]+)/g, '{$1}');
        const ops = documented.get(p);
        assert.ok(ops, `${p} is not in openapi.json`);
        for (const m of methods) if (m !== 'HEAD') assert.ok(m.toLowerCase() in ops!, `${m} ${p} is not in openapi.json`);
      }
      assert.ok(doc.paths['/api/2.0/servers/{uuid}/'].put.requestBody, 'PUT /servers/{uuid}/ documents its body');
    });
  });
}
