import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { SocketReader } from './helpers/socket-reader.ts';
import { MAX_FILTER_VALUES, MAX_OBJECTS_PER_REQUEST } from '../src/api/lists.ts';

const basic = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

/** One request on its own socket, exactly as written (fetch would fix the URL up). */
async function rawRequest(t: TestServer, head: string): Promise<{ status: number; head: string; body: any }> {
  const s = await SocketReader.connect(t.url);
  s.sock.write(head);
  const h = await s.readUntil('\r\n\r\n');
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(h)?.[1] ?? 0);
  const body = JSON.parse((await s.read(length)).toString('utf8'));
  s.sock.destroy();
  return { status: Number(h.split(' ')[1]), head: h, body };
}

function assertErrorArray(r: { status: number; body: any }, status: number, what: string) {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.ok(
    Array.isArray(r.body) && r.body.length >= 1 && typeof r.body[0].error_message === 'string' && 'error_point' in r.body[0] && 'error_type' in r.body[0],
    `${what}: ${JSON.stringify(r.body)}`,
  );
}

for (const db of databases()) {
  describe(`malformed requests answer the error array [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('a path with a malformed percent-encoding: 400 with credentials, 401 without', async () => {
      const path = '/api/2.0/servers/%E0%A4%A/';
      assertErrorArray(await rawRequest(t, `GET ${path} HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n\r\n`), 400, 'authenticated');
      assertErrorArray(await rawRequest(t, `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`), 401, 'anonymous');
      const query = await t.call('GET', '/servers/?name=%E0%A4%A&limit=%ZZ');
      assert.ok(query.status < 500, query.text);
    });

    test('ids over 100 characters are not found, in the error array, not the router 414', async () => {
      for (const p of [`/servers/${'a'.repeat(101)}/`, `/drives/${'b'.repeat(5000)}/`, `/ips/${'1'.repeat(300)}/`, `/subscriptions/${'9'.repeat(200)}/`]) {
        const r = await t.call('GET', p);
        assertErrorArray(r, 404, p.slice(0, 30));
      }
    });

    test('oversized headers answer 431 in the error array', async () => {
      const r = await rawRequest(t, `GET /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\nx-padding: ${'p'.repeat(40_000)}\r\n\r\n`);
      assertErrorArray(r, 431, 'oversized headers');
    });

    test(`filters take at most ${MAX_FILTER_VALUES} values: above it 400, not the database's 500`, async () => {
      const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`).join(',');
      for (const p of ['/servers/', '/servers/detail/', '/drives/', '/tags/', '/ips/', '/keypairs/', '/snapshots/', '/acls/']) {
        const over = await t.call('GET', `${p}?name__contains=${values(1000)}`);
        assertErrorArray(over, 400, `${p} 1000 name__contains`);
        assertErrorArray(await t.call('GET', `${p}?uuid=${values(MAX_FILTER_VALUES + 1)}`), 400, `${p} uuid`);
        const repeated = Array.from({ length: 60 }, (_, i) => `name=a${i}`).join('&');
        assertErrorArray(await t.call('GET', `${p}?${repeated}&tag=${values(60)}`), 400, `${p} repeated`);
        const at = await t.call('GET', `${p}?name__contains=${values(MAX_FILTER_VALUES)}`);
        assert.equal(at.status, 200, `${p} at the maximum: ${at.text.slice(0, 300)}`);
      }
    });

    test('a parameter given twice is not a 500: subscription filters OR its values, an action refuses it', async () => {
      for (const p of ['/subscriptions/', '/groupedsubscriptions/']) {
        const r = await t.call('GET', `${p}?status=active&status=expired&resource=ip&resource=vlan&subscribed_object=a&subscribed_object=b`);
        assert.equal(r.status, 200, `${p}: ${r.text}`);
      }
      const s = (await t.call('POST', '/servers/', minimalServer('twice'))).body.objects[0];
      assertErrorArray(
        await t.call('POST', `/servers/${s.uuid}/action/?do=start&avoid=${s.uuid}&avoid=00000000-0000-4000-8000-000000000000`),
        400,
        'avoid twice',
      );
      assertErrorArray(await t.call('POST', `/servers/${s.uuid}/action/?do=stop&do=start`), 400, 'do twice');
      assert.equal((await t.call('DELETE', `/servers/${s.uuid}/`)).status, 204);
    });

    test(`creates and bulk deletes take at most ${MAX_OBJECTS_PER_REQUEST} objects: above it 400 and nothing is written`, async () => {
      const many = (n: number, make: (i: number) => object) => ({ objects: Array.from({ length: n }, (_, i) => make(i)) });
      const over = MAX_OBJECTS_PER_REQUEST + 1;
      assertErrorArray(
        await t.call(
          'POST',
          '/servers/',
          many(over, (i) => minimalServer(`s${i}`)),
        ),
        400,
        'servers',
      );
      assertErrorArray(
        await t.call(
          'POST',
          '/drives/',
          many(over, (i) => ({ name: `d${i}`, size: 536870912, media: 'disk' })),
        ),
        400,
        'drives',
      );
      assertErrorArray(
        await t.call(
          'POST',
          '/tags/',
          many(over, (i) => ({ name: `t${i}` })),
        ),
        400,
        'tags',
      );
      assertErrorArray(
        await t.call(
          'POST',
          '/tags/',
          Array.from({ length: over }, (_, i) => ({ name: `bare${i}` })),
        ),
        400,
        'bare list',
      );
      for (const p of ['/servers/', '/drives/', '/tags/'])
        assert.equal((await t.call('GET', `${p}?limit=0`)).body.meta.total_count, 0, `${p}: nothing created`);
      const uuid = '00000000-0000-4000-8000-000000000000';
      assertErrorArray(
        await t.call(
          'DELETE',
          '/drives/',
          many(over, () => ({ uuid })),
        ),
        400,
        'bulk drive delete',
      );
      assertErrorArray(
        await t.call(
          'DELETE',
          '/snapshots/',
          many(over, () => ({ uuid })),
        ),
        400,
        'bulk snapshot delete',
      );
      const at = await t.call(
        'POST',
        '/tags/',
        many(MAX_OBJECTS_PER_REQUEST, (i) => ({ name: `t${i}` })),
      );
      assert.equal(at.status, 201, at.text.slice(0, 300));
    });
  });
}
