import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { contextReply, guestSshKeys } from '../src/commands/server-context.ts';

/**
 * cloud-init's CloudSigma datasource reads only meta.ssh_public_key (and fails when it is missing), so the context
 * answers it with the server's own value plus every key of its pubkeys, and '' for a server without keys.
 */
const EOT = '\x04';
const K1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDm1k0m7sQfLr5k2c8cJvG1xH3T2J2cTnQfXvYk2b0aA';
const K2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc3c7g6bWm9wq6mZr0GmX3u0m4fJqz8b6o1l0Yb0Z1B';

test('keys are joined one per line, duplicates dropped; a comment-less line followed by another gets a comment', () => {
  assert.equal(guestSshKeys(undefined, []), '');
  assert.equal(guestSshKeys('', [K1]), K1);
  assert.equal(guestSshKeys(`${K1} me@laptop`, [K1, K2]), `${K1} me@laptop\n${K2}`);
  assert.equal(guestSshKeys(K1, [K2]), `${K1} key1\n${K2}`);
  assert.equal(guestSshKeys(`${K1}\r\n\r\n`, [`${K2} two\n`]), `${K1} key1\n${K2} two`);
});

for (const db of databases()) {
  describe(`context ssh_public_key [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(() => t.close());

    test('a server with pubkeys and its own meta key gets both; one with neither gets an empty value, meta otherwise unchanged', async () => {
      const kp = await t.call('POST', '/keypairs/', { name: 'laptop', public_key: `${K2} me@laptop` });
      assert.equal(kp.status, 201, JSON.stringify(kp.body));
      const withKeys = (
        await t.call('POST', '/servers/', minimalServer('keyed', { pubkeys: [kp.body.objects[0].uuid], meta: { ssh_public_key: `${K1} own` } }))
      ).body.objects[0];
      assert.equal(await contextReply(t.running.svc, withKeys.uuid, '/meta/ssh_public_key'), `${K1} own\\n${K2} me@laptop\n${EOT}`);
      // The server itself is not changed: its meta says what the user put there.
      assert.equal((await t.call('GET', `/servers/${withKeys.uuid}/`)).body.meta.ssh_public_key, `${K1} own`);

      const bare = (await t.call('POST', '/servers/', minimalServer('bare', { meta: { role: 'web' } }))).body.objects[0];
      assert.equal(await contextReply(t.running.svc, bare.uuid, 'meta'), `{"role": "web", "ssh_public_key": ""}\n${EOT}`);
      assert.deepEqual((await t.call('GET', `/servers/${bare.uuid}/`)).body.meta, { role: 'web' });
    });
  });
}
