import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CliUser } from './helpers/cli-client.ts';

test('serve --ephemeral: one JSON line with working credentials, a free port, and nothing left after it stops', async () => {
  const u = new CliUser();
  const child = u.spawn(['serve', '--ephemeral', '--sim-delay-ms', '50']);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no JSON line: ${out} ${err}`)), 30000);
      child.stdout!.on('data', () => out.includes('\n') && (clearTimeout(timer), resolve()));
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
    });
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 1, 'one line');
    const e = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(e).sort(), ['data', 'password', 'token', 'url', 'user']);
    assert.match(e.url, /^http:\/\/127\.0\.0\.1:\d+\/api\/2\.0$/);
    assert.notEqual(new URL(e.url).port, '8080');
    assert.ok(fs.existsSync(e.data));
    const byToken = await fetch(`${e.url}/servers/`, { headers: { authorization: `Bearer ${e.token}` } });
    assert.equal(byToken.status, 200);
    const byPassword = await fetch(`${e.url}/profile/`, { headers: { authorization: `Basic ${Buffer.from(`${e.user}:${e.password}`).toString('base64')}` } });
    assert.equal((await byPassword.json()).email, e.user);

    // The client takes the same line: OPENSIGMA_URL and OPENSIGMA_TOKEN.
    const r = await u.run(['servers', 'create', '--name', 'eph', '-o', 'json'], { env: { OPENSIGMA_URL: e.url, OPENSIGMA_TOKEN: e.token } });
    assert.equal(r.code, 0, r.stderr);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(e.data), false, 'the data directory is removed');
    await assert.rejects(fetch(`${e.url}/servers/`), 'the port is closed');
  } finally {
    child.kill('SIGKILL');
    u.cleanup();
  }
});
