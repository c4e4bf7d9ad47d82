import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { splitOr } from '../src/api/lists.ts';

for (const db of databases()) {
  describe(`list filters [${db.name}]`, () => {
    let t: TestServer;
    let call: TestServer['call'];
    const ids: Record<string, string> = {};
    let red: string;
    let blue: string;
    const names = (r: any) => r.body.objects.map((s: any) => s.name).sort();

    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create('filters@example.com', 'password-1');
      call = t.as('filters@example.com', 'password-1');
      red = (await call('POST', '/tags/', { name: 'red' })).body.objects[0].uuid;
      blue = (await call('POST', '/tags/', { name: 'blue,green' })).body.objects[0].uuid;
      const defs = [
        minimalServer('alpha', { tags: [red] }),
        minimalServer('beta', { tags: [blue] }),
        minimalServer('gamma', { tags: [red, blue] }),
        minimalServer('a,b'),
        minimalServer('back\\slash'),
        minimalServer('Alphabet'),
        minimalServer('50%_off'),
      ];
      const r = await call('POST', '/servers/', { objects: defs });
      assert.equal(r.status, 201, r.text);
      for (const s of r.body.objects) ids[s.name] = s.uuid;
      // Someone else's server of the same name never shows.
      await t.call('POST', '/servers/', minimalServer('alpha'));
    });
    after(async () => t.close());

    test('name is exact; a comma means OR', async () => {
      assert.deepEqual(names(await call('GET', '/servers/?name=alpha')), ['alpha']);
      assert.deepEqual(names(await call('GET', '/servers/?name=alpha,beta')), ['alpha', 'beta']);
      assert.deepEqual(names(await call('GET', '/servers/?name=alph')), []);
    });

    test('\\, is a literal comma and \\\\ a literal backslash', async () => {
      assert.deepEqual(names(await call('GET', `/servers/?name=${encodeURIComponent('a\\,b')}`)), ['a,b']);
      assert.deepEqual(names(await call('GET', `/servers/?name=${encodeURIComponent('back\\\\slash')}`)), ['back\\slash']);
      assert.deepEqual(names(await call('GET', `/servers/?name=${encodeURIComponent('a\\,b,alpha')}`)), ['a,b', 'alpha']);
      assert.deepEqual(splitOr('x\\\\,y'), ['x\\', 'y']);
      assert.deepEqual(splitOr('x\\y'), ['x\\y']);
    });

    test('name__contains is a case-insensitive substring, wildcards taken literally', async () => {
      assert.deepEqual(names(await call('GET', '/servers/?name__contains=ALPHA')), ['Alphabet', 'alpha']);
      assert.deepEqual(names(await call('GET', '/servers/?name__contains=et,mm')), ['Alphabet', 'beta', 'gamma']);
      assert.deepEqual(names(await call('GET', `/servers/?name__contains=${encodeURIComponent('%_')}`)), ['50%_off']);
      assert.deepEqual(names(await call('GET', '/servers/?name__contains=_')), ['50%_off']);
    });

    test('uuid, and separate or repeated parameters AND-ed', async () => {
      assert.deepEqual(names(await call('GET', `/servers/?uuid=${ids.alpha},${ids.beta}`)), ['alpha', 'beta']);
      assert.deepEqual(names(await call('GET', `/servers/?uuid=${ids.alpha},${ids.beta}&name=beta`)), ['beta']);
      assert.deepEqual(names(await call('GET', '/servers/?name__contains=a&name__contains=mm')), ['gamma']);
    });

    test('tag by uuid and tag__name, OR within one, AND across repeats', async () => {
      assert.deepEqual(names(await call('GET', `/servers/?tag=${red}`)), ['alpha', 'gamma']);
      assert.deepEqual(names(await call('GET', `/servers/?tag=${red},${blue}`)), ['alpha', 'beta', 'gamma']);
      assert.deepEqual(names(await call('GET', `/servers/?tag=${red}&tag=${blue}`)), ['gamma']);
      assert.deepEqual(names(await call('GET', '/servers/?tag__name=red')), ['alpha', 'gamma']);
      assert.deepEqual(names(await call('GET', `/servers/?tag__name=${encodeURIComponent('blue\\,green')}`)), ['beta', 'gamma']);
      assert.deepEqual(names(await call('GET', '/servers/?tag__name=blue')), []);
      assert.deepEqual(names(await call('GET', '/servers/detail/?tag__name=red&name=gamma')), ['gamma']);
      const total = await call('GET', '/servers/?tag__name=red&limit=1');
      assert.equal(total.body.meta.total_count, 2);
      assert.equal(total.body.objects.length, 1);
    });

    test('status (an extension) with comma-OR', async () => {
      await call('POST', `/servers/${ids.beta}/action/?do=start`);
      await waitForStatus({ ...t, call }, ids.beta!, 'running');
      assert.deepEqual(names(await call('GET', '/servers/?status=running')), ['beta']);
      assert.equal((await call('GET', '/servers/?status=running,stopped')).body.meta.total_count, 7);
      await call('POST', `/servers/${ids.beta}/action/?do=stop`);
      await waitForStatus({ ...t, call }, ids.beta!, 'stopped');
    });

    test('order_by name and -name; other fields refused', async () => {
      const asc = await call('GET', '/servers/?order_by=name&limit=0');
      const plain = asc.body.objects.map((s: any) => s.name);
      assert.deepEqual(
        plain,
        [...plain].sort((a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)),
      );
      const desc = await call('GET', '/servers/?order_by=-name&limit=0');
      assert.deepEqual(
        desc.body.objects.map((s: any) => s.name),
        [...plain].reverse(),
      );
      const bad = await call('GET', '/servers/?order_by=vnc_password');
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'order_by');
    });

    test('unknown parameters are ignored', async () => {
      assert.equal((await call('GET', '/servers/?colour=red')).body.meta.total_count, 7);
    });
  });
}
