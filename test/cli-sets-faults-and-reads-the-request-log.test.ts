import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, startServer } from './helpers/harness.ts';
import { CliUser } from './helpers/cli-client.ts';

test('opensigma faults list|add|remove|clear and opensigma requests --har against a real server', async () => {
  const t = await startServer({ OPENSIGMA_REQUEST_LOG: '50' });
  const u = new CliUser();
  try {
    const login = await u.run(['login', t.url, '--user', ADMIN.email, '--password-stdin'], { input: `${ADMIN.password}\n` });
    assert.equal(login.code, 0, login.stderr);
    const added = await u.json('faults', 'add', '--id', 'tags-down', '--method', 'GET', '--path', '/api/2.0/tags/', '--status', '503', '--count', '1');
    assert.equal(added[0].id, 'tags-down');
    assert.equal((await t.call('GET', '/tags/')).status, 503);
    assert.equal((await t.call('GET', '/tags/')).status, 200, 'count 1');
    const listed = await u.json('faults', 'list');
    assert.equal(listed[0].fired, 1);
    assert.match(await u.ok('faults', 'list'), /tags-down/);
    const bad = await u.run(['faults', 'add', '--path', '/x/', '--status', '200']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /status/);
    await u.ok('faults', 'remove', 'tags-down');
    assert.deepEqual(await u.json('faults', 'list'), []);
    await u.ok('faults', 'add', '--path', '/api/2.0/servers/**', '--latency-ms', '10');
    await u.ok('faults', 'clear');
    assert.deepEqual(await u.json('faults', 'list'), []);

    const reqs = await u.json('requests', '--account', ADMIN.email);
    assert.ok(reqs.some((e: any) => e.url === '/api/2.0/tags/' && e.response.status === 503));
    const har = path.join(u.home, 'out.har');
    await u.ok('requests', '--har', har);
    const parsed = JSON.parse(fs.readFileSync(har, 'utf8'));
    assert.equal(parsed.log.version, '1.2');
    assert.ok(parsed.log.entries.some((e: any) => e.request.url.endsWith('/api/2.0/tags/') && e.response.status === 503));
    assert.ok(!fs.readFileSync(har, 'utf8').includes(ADMIN.password));
  } finally {
    u.cleanup();
    await t.close();
  }
});
