import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

const PUB_ONLY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFGtYDl+/Oua9uBXqwcbE84QUBBbDdMMzaZ6MAGg1Bmus9VEW0P8kK6npZ0SaUnB2xRrBNwCv0Q0uZBJ70UicgsrhBjCXIVa7K6yQYrFzMxfN8saNAjJvGDdWGSvcMxJdpYwXiOQhFan36eJCCwQjni7I538Ii9chPD8/tyJcBIw==';

/** What ssh-keygen derives from a private key, when ssh-keygen is installed. */
function sshKeygenPublic(privateKey: string): string | null {
  try {
    execFileSync('ssh-keygen', ['-V'], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('which', ['ssh-keygen'], { stdio: 'ignore' });
    } catch {
      return null;
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-key-'));
  const file = path.join(dir, 'id');
  fs.writeFileSync(file, privateKey, { mode: 0o600 });
  try {
    return execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const db of databases()) {
  describe(`keypairs and pubkeys [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('a public key alone: private_key null, MD5 fingerprint as the transcript, mirrored in /pubkeys/', async () => {
      const c = await t.call('POST', '/keypairs/', { objects: [{ name: 'test_another_pub', public_key: PUB_ONLY }] });
      assert.equal(c.status, 201);
      const k = c.body.objects[0];
      assert.deepEqual(Object.keys(k), ['fingerprint', 'grantees', 'meta', 'name', 'permissions', 'private_key', 'public_key', 'resource_uri', 'tags', 'uuid']);
      assert.equal(k.fingerprint, 'e8:ee:43:72:38:09:6d:1e:8e:46:9e:76:80:a3:0a:01');
      assert.equal(k.private_key, null);
      assert.equal(k.public_key, PUB_ONLY);
      const p = await t.call('GET', `/pubkeys/${k.uuid}/`);
      assert.equal(p.status, 200);
      assert.equal(p.body.has_private_key, false);
      assert.ok(!('private_key' in p.body));
      assert.equal(p.body.resource_uri, `/api/2.0/pubkeys/${k.uuid}/`);
      assert.ok((await t.call('GET', '/pubkeys/?limit=0')).body.objects.some((x: any) => x.uuid === k.uuid));
    });

    for (const alg of ['rsa', 'ed25519'] as const) {
      test(`generated ${alg} key pair: a private key OpenSSH reads, and the matching public key`, async () => {
        const c = await t.call('POST', '/keypairs/', { objects: [{ name: `gen-${alg}`, algorithm_type: alg }] });
        assert.equal(c.status, 201);
        const k = c.body.objects[0];
        assert.match(k.public_key, alg === 'rsa' ? /^ssh-rsa AAAAB3NzaC1yc2E/ : /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5/);
        assert.match(k.private_key, alg === 'rsa' ? /^-----BEGIN RSA PRIVATE KEY-----\n/ : /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
        assert.match(k.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
        const derived = sshKeygenPublic(k.private_key);
        if (derived !== null) assert.equal(derived.split(' ').slice(0, 2).join(' '), k.public_key);
        assert.equal((await t.call('GET', `/pubkeys/${k.uuid}/`)).body.has_private_key, true);
      });
    }

    test('a name alone generates RSA (libcloud); a private key alone yields its public key', async () => {
      const c = await t.call('POST', '/keypairs/', { name: 'libcloud-style' });
      assert.equal(c.status, 201);
      assert.match(c.body.objects[0].public_key, /^ssh-rsa /);
      const gen = c.body.objects[0];
      const again = await t.call('POST', '/keypairs/', { name: 'from-private', private_key: gen.private_key });
      assert.equal(again.status, 201);
      assert.equal(again.body.objects[0].public_key, gen.public_key);
      assert.equal(again.body.objects[0].fingerprint, gen.fingerprint);
    });

    test('get, list, edit name and meta (keys read-only), delete detaches from servers', async () => {
      const k = (await t.call('POST', '/keypairs/', { name: 'edit-me', public_key: PUB_ONLY })).body.objects[0];
      assert.deepEqual((await t.call('GET', `/keypairs/${k.uuid}/`)).body, k);
      const put = await t.call('PUT', `/keypairs/${k.uuid}/`, { ...k, name: 'new_name', meta: { a: 'b' }, public_key: 'ssh-rsa AAAA', fingerprint: 'x' });
      assert.equal(put.status, 200);
      assert.equal(put.body.name, 'new_name');
      assert.deepEqual(put.body.meta, { a: 'b' });
      assert.equal(put.body.public_key, PUB_ONLY);
      assert.equal(put.body.fingerprint, k.fingerprint);
      assert.deepEqual(
        (await t.call('GET', '/keypairs/?name=new_name')).body.objects.map((x: any) => x.uuid),
        [k.uuid],
      );
      const s = (await t.call('POST', '/servers/', minimalServer('with-key', { pubkeys: [k.uuid] }))).body.objects[0];
      assert.deepEqual(s.pubkeys, [{ resource_uri: `/api/2.0/pubkeys/${k.uuid}/`, uuid: k.uuid }]);
      assert.equal((await t.call('DELETE', `/keypairs/${k.uuid}/`)).status, 204);
      assert.equal((await t.call('GET', `/keypairs/${k.uuid}/`)).status, 404);
      assert.equal((await t.call('GET', `/pubkeys/${k.uuid}/`)).status, 404);
      assert.deepEqual((await t.call('GET', `/servers/${s.uuid}/`)).body.pubkeys, []);
    });

    test('bad input changes nothing: missing name, bad keys, wrong types, unknown algorithm, another account', async () => {
      const before = (await t.call('GET', '/keypairs/?limit=0')).body.meta.total_count;
      for (const item of [
        { public_key: PUB_ONLY },
        { name: 'x', public_key: 'not a key' },
        { name: 'x', public_key: 'ssh-rsa !!!notbase64' },
        { name: 'x', public_key: 'ssh-ed25519 ' + Buffer.from('garbage').toString('base64') },
        { name: 'x', public_key: 42 },
        { name: 'x', private_key: 'not a pem' },
        { name: 'x', algorithm_type: 'dsa' },
        { name: 'x', algorithm_type: 'rsa', public_key: PUB_ONLY },
        { name: {}, public_key: PUB_ONLY },
        { name: 'x', public_key: PUB_ONLY, meta: [] },
      ]) {
        const r = await t.call('POST', '/keypairs/', { objects: [{ name: 'fine', public_key: PUB_ONLY }, item] });
        assert.equal(r.status, 400, JSON.stringify(item));
        assert.equal(r.body[0].error_type, 'validation');
      }
      assert.equal((await t.call('GET', '/keypairs/?limit=0')).body.meta.total_count, before);
      const k = (await t.call('POST', '/keypairs/', { name: 'mine', public_key: PUB_ONLY })).body.objects[0];
      assert.equal((await t.call('PUT', `/keypairs/${k.uuid}/`, { name: '' })).status, 400);
      assert.equal((await t.call('PUT', `/keypairs/${k.uuid}/`, [1])).status, 400);
      await t.running.svc.store.users.create('mallory-keys@example.com', 'mallory-pw');
      const m = t.as('mallory-keys@example.com', 'mallory-pw');
      for (const [method, p] of [
        ['GET', `/keypairs/${k.uuid}/`],
        ['GET', `/pubkeys/${k.uuid}/`],
        ['PUT', `/keypairs/${k.uuid}/`],
        ['DELETE', `/keypairs/${k.uuid}/`],
      ] as const)
        assert.equal((await m(method, p, method === 'PUT' ? { name: 'stolen' } : undefined)).status, 404, `${method} ${p}`);
      assert.equal((await m('POST', '/servers/', minimalServer('m', { pubkeys: [k.uuid] }))).status, 400);
      assert.equal((await t.call('GET', `/keypairs/${k.uuid}/`)).body.name, 'mine');
      assert.equal((await t.call('GET', '/keypairs/00000000-0000-4000-8000-000000000000/')).status, 404);
    });
  });
}
