import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { SocketReader, isListening } from './helpers/socket-reader.ts';

const tcp = (consoleUrl: string) => consoleUrl.replace(/^csconsole:/, 'tcp:');

for (const db of databases()) {
  describe(`server serial console [${db.name}]`, () => {
    let t: TestServer;
    let uuid: string;
    before(async () => {
      t = await startServer({}, db);
      const c = await t.call('POST', '/servers/', minimalServer('console-box', { vnc_password: 'letmein1' }));
      uuid = c.body.objects[0].uuid;
    });
    after(async () => t.close());

    test('open_console on a stopped server is refused', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
      assert.equal(r.status, 403);
      assert.equal(r.body[0].error_type, 'permission');
    });

    test('the console asks for the vnc_password, then joins the guest shell', async () => {
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
      assert.equal(r.status, 202);
      assert.equal(r.body.action, 'open_console');
      assert.equal(r.body.result, 'success');
      assert.match(r.body.console_url, /^csconsole:\/\/127\.0\.0\.1:\d+$/);

      const c = await SocketReader.connect(tcp(r.body.console_url));
      await c.readUntil('Password:');
      c.write('letmein1\r\n');
      await c.readUntil('root@console-box:~# ');
      c.write('hostname\r\n');
      const out = await c.readUntil('root@console-box:~# ');
      assert.match(out, /hostname\r\nconsole-box\r\n/, 'the command is echoed, then answered');
      c.write('echo hello there\r\n');
      assert.match(await c.readUntil('root@console-box:~# '), /hello there\r\n/);

      // One client at a time: a second one, even with the right password, is turned away; the first keeps its session.
      const other = await SocketReader.connect(tcp(r.body.console_url));
      await other.readUntil('Password:');
      other.write('letmein1\r\n');
      assert.match(await other.readToEnd(), /another client/i);
      c.write('whoami\r\n');
      assert.match(await c.readUntil('# '), /root/);
      c.close();
      await c.closed;
    });

    test('a wrong password disconnects', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
      const c = await SocketReader.connect(tcp(r.body.console_url));
      await c.readUntil('Password:');
      c.write('guess\r\n');
      const rest = await c.readToEnd();
      assert.match(rest, /wrong password/i);
      assert.doesNotMatch(rest, /#/);
    });

    test('close_console shuts the port', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
      assert.equal(await isListening(tcp(r.body.console_url)), true);
      const c = await t.call('POST', `/servers/${uuid}/action/?do=close_console`);
      assert.equal(c.status, 202);
      assert.deepEqual(c.body, { action: 'close_console', result: 'success', uuid });
      assert.equal(await isListening(tcp(r.body.console_url)), false);
    });

    test('poweroff typed on the console stops the server', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
      const c = await SocketReader.connect(tcp(r.body.console_url));
      await c.readUntil('Password:');
      c.write('letmein1\n');
      await c.readUntil('# ');
      c.write('poweroff\n');
      await c.readUntil('Power down');
      await c.closed;
      const s = await waitForStatus(t, uuid, 'stopped');
      assert.equal(s.runtime, null);
      assert.equal(await isListening(tcp(r.body.console_url)), false, 'a stopped server has no console');
    });
  });
}
