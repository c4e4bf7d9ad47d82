import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { BIN, CliUser } from './helpers/cli-client.ts';

describe('servers console, ssh and vnc', () => {
  let t: TestServer;
  let u: CliUser;
  before(async () => {
    t = await startServer({ OPENSIGMA_SIM_DELAY_MS: '50' });
    u = new CliUser();
    await u.run(['login', t.url, '--user', ADMIN.email, '--password-stdin'], { input: `${ADMIN.password}\n` });
    const lib = (await u.json('libdrives', 'list', '--fields', 'uuid,media')).find((d: any) => d.media === 'disk');
    await u.ok('libdrives', 'clone', lib.uuid, '--name', 'box-disk', '--wait');
    await u.ok('servers', 'create', '--name', 'box', '--vnc-password', 'letmein1', '--dhcp', '--drive', 'box-disk');
    await u.ok('servers', 'start', 'box', '--wait');
  });
  after(async () => {
    u?.cleanup();
    await t?.close();
  });

  test('console, in a pseudo-terminal: the password is typed for you, a command runs, Ctrl-] q leaves', async () => {
    // script(1) gives the command a terminal of its own, as a person's shell would.
    const cmd = [process.execPath, BIN, 'servers', 'console', 'box'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: u.env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const code = new Promise<number | null>((r) => child.once('exit', r));
    try {
      await waitFor(async () => out.includes('root@box:~# '), 20000, `the guest prompt in: ${JSON.stringify(out)}`);
      assert.match(out, /To leave: Ctrl-\] then q/);
      assert.doesNotMatch(out, /letmein1/, 'the password is not echoed');
      child.stdin!.write('hostname\r');
      await waitFor(async () => /hostname\r+\n+box\r+\n+root@box:~# /.test(out), 10000, `the answer in: ${JSON.stringify(out)}`);
      child.stdin!.write('\x1dq');
      assert.equal(await code, 0);
      assert.match(out, /\[left the console\]/);
    } finally {
      child.kill();
    }
  });

  test('ssh runs ssh as the image user at the server address, passing the arguments after --', async () => {
    const bin = path.join(u.home, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'ssh'), '#!/bin/sh\nprintf "%s\\n" "$@"\nexit 7\n', { mode: 0o755 });
    const s = await u.json('servers', 'get', 'box');
    const ip = await waitFor(async () => (await t.call('GET', `/servers/${s.uuid}/`)).body.nics[0].runtime?.ip_v4?.uuid, 10000, 'a DHCP address');
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const r = await u.run(['servers', 'ssh', 'box', '--', 'uptime', '-p'], { env });
    assert.equal(r.code, 7, "ssh's exit status is the command's");
    assert.equal(r.stdout, `debian@${ip}\nuptime\n-p\n`, 'the Debian image logs in as debian');
    const other = await u.run(['servers', 'ssh', 'box', '--user', 'admin'], { env });
    assert.equal(other.stdout, `admin@${ip}\n`);
  });

  test('vnc prints the vnc:// URL and the password', async () => {
    const out = await u.ok('servers', 'vnc', 'box');
    assert.match(out, /^url: +vnc:\/\/127\.0\.0\.1:\d+\npassword: +letmein1\n$/);
  });

  test('console and ssh of a stopped server exit 1 with the reason', async () => {
    await u.ok('servers', 'stop', 'box', '--wait');
    const c = await u.run(['servers', 'console', 'box']);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /\[permission\]/);
    const s = await u.run(['servers', 'ssh', 'box']);
    assert.deepEqual([s.code, s.stderr], [1, 'opensigma: server box has no IPv4 address (it is stopped)\n']);
  });

  test('on a terminal, --wait draws its status line in place; the result is printed once', async () => {
    const cmd = [process.execPath, BIN, 'servers', 'start', 'box', '--wait'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: u.env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    assert.equal(await new Promise((r) => child.once('exit', r)), 0);
    assert.match(out, /\r\x1b\[2K. (waiting for server box to be running|server box: (stopped|starting|running))/);
    assert.match(out, /server box is running\r?\n/);
  });
});
