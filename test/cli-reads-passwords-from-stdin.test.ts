import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer, type TestServer } from './helpers/harness.ts';
import { cli, cliWithInput } from './helpers/cli-process.ts';

// --password-stdin keeps a password out of the process list and the shell's history.
for (const db of databases()) {
  describe(`the CLI reads passwords from standard input [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t?.close());

    const status = async (email: string, password: string) => (await t.as(email, password)('GET', '/servers/')).status;

    test('user add and user set-password take the first line of standard input', async () => {
      assert.match(await cliWithInput(t, 'first-secret\n', 'user', 'add', 'stdin@example.com', '--password-stdin'), /created user stdin@example.com/);
      assert.equal(await status('stdin@example.com', 'first-secret'), 200);
      await cliWithInput(t, 'second-secret\r\nignored second line\n', 'user', 'set-password', 'stdin@example.com', '--password-stdin');
      assert.equal(await status('stdin@example.com', 'first-secret'), 401);
      assert.equal(await status('stdin@example.com', 'second-secret'), 200);
    });

    test('no password, an empty one, or two of them: refused in one line, nothing changed', async () => {
      await assert.rejects(cli(t, 'user', 'add', 'nopw@example.com'), /exit|a password is needed/);
      await assert.rejects(cliWithInput(t, '', 'user', 'add', 'nopw@example.com', '--password-stdin'), /exit 2: opensigma: standard input held no password\n$/);
      await assert.rejects(
        cliWithInput(t, 'x\n', 'user', 'add', 'nopw@example.com', '--password', 'y', '--password-stdin'),
        /exit 2: opensigma: give --password or --password-stdin, not both\n$/,
      );
      await assert.rejects(cliWithInput(t, '\n', 'user', 'set-password', 'stdin@example.com', '--password-stdin'), /exit 2: .*no password/);
      assert.equal(await status('nopw@example.com', 'y'), 401);
      assert.equal(await status('stdin@example.com', 'second-secret'), 200);
      // The flag of the fixed interface still works.
      await cli(t, 'user', 'add', 'flag@example.com', '--password', 'flag-secret');
      assert.equal(await status('flag@example.com', 'flag-secret'), 200);
    });
  });
}
