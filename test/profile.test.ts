import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const KEYS = [
  'address',
  'api_https_only',
  'autotopup_amount',
  'autotopup_threshold',
  'bank_reference',
  'clone_naming',
  'company',
  'country',
  'currency',
  'email',
  'first_name',
  'has_autotopup',
  'has_tx_autotopup',
  'invoicing',
  'key_auth',
  'language',
  'last_name',
  'mailing_list',
  'meta',
  'my_notes',
  'network_restrictions',
  'nickname',
  'phone',
  'postcode',
  'reseller',
  'signup_time',
  'state',
  'tax_name',
  'tax_rate',
  'title',
  'town',
  'tx_autotopup_amount',
  'tx_autotopup_threshold',
  'uuid',
  'vat',
];

for (const db of databases()) {
  describe(`profile [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('GET has the keys of the transcript; PUT edits, ignores read-only fields; DELETE is 405', async () => {
      const g = await t.call('GET', '/profile/');
      assert.equal(g.status, 200);
      assert.deepEqual(Object.keys(g.body), KEYS);
      assert.equal(g.body.email, 'admin@example.com');
      assert.equal(g.body.clone_naming, 'NONE');
      assert.equal(g.body.autotopup_amount, '0');
      assert.match(g.body.signup_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      const put = await t.call('PUT', '/profile/', {
        ...g.body,
        company: 'Newly Set Company Name',
        email: 'evil@example.com',
        uuid: 'x',
        state: 'GUEST',
        currency: 'XXX',
        meta: { a: '1' },
      });
      assert.equal(put.status, 200);
      assert.equal(put.body.company, 'Newly Set Company Name');
      assert.equal(put.body.email, 'admin@example.com');
      assert.equal(put.body.uuid, g.body.uuid);
      assert.equal(put.body.state, 'REGULAR');
      assert.equal(put.body.currency, g.body.currency);
      assert.deepEqual(put.body.meta, { a: '1' });
      assert.deepEqual((await t.call('GET', '/profile/')).body, put.body);
      const del = await t.call('DELETE', '/profile/');
      assert.equal(del.status, 405);
      assert.equal(del.body[0].error_type, 'validation');
    });

    test('bad input changes nothing', async () => {
      const before = (await t.call('GET', '/profile/')).body;
      for (const body of [
        { clone_naming: 'SOMETIMES' },
        { clone_naming: 1 },
        { invoicing: 'maybe' },
        { company: ['x'] },
        { autotopup_amount: 'lots' },
        { meta: 'x' },
      ]) {
        const r = await t.call('PUT', '/profile/', { ...before, company: 'changed?', ...body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body[0].error_type, 'validation');
      }
      for (const raw of [[1, 2], '"text"', 'not json']) assert.equal((await t.call('PUT', '/profile/', raw)).status, 400);
      assert.deepEqual((await t.call('GET', '/profile/')).body, before);
    });

    test('clone_naming set by PUT names drive clones: NONE, COUNTER, DATE, TIMESTAMP', async () => {
      const d = (await t.call('POST', '/drives/', { name: 'test_drive_x', size: 1024 ** 3, media: 'disk' })).body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${d}/`)).body.status === 'unmounted', 10000, 'drive');
      const today = new Date().toISOString().slice(0, 10);
      const expected: Record<string, RegExp> = {
        NONE: /^test_drive_x$/,
        COUNTER: /^test_drive_x_1$/,
        DATE: new RegExp(`^test_drive_x-${today}$`),
        TIMESTAMP: new RegExp(`^test_drive_x-${today} \\d\\d:\\d\\d:\\d\\d$`),
      };
      for (const [naming, re] of Object.entries(expected)) {
        const p = await t.call('PUT', '/profile/', { clone_naming: naming });
        assert.equal(p.body.clone_naming, naming);
        await waitFor(async () => ['unmounted', 'mounted'].includes((await t.call('GET', `/drives/${d}/`)).body.status), 10000, 'source idle');
        const c = await t.call('POST', `/drives/${d}/action/?do=clone`, {});
        assert.equal(c.status, 202, JSON.stringify(c.body));
        assert.match(c.body.objects[0].name, re, naming);
      }
      // let the copies finish before the server goes away
      await waitFor(
        async () => !(await t.call('GET', '/drives/detail/?limit=0')).body.objects.some((x: any) => x.status.startsWith('cloning')),
        20000,
        'clones',
      );
    });
  });
}
