import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { CliUser } from './helpers/cli-client.ts';

// 100 MB, as the issue asks, and not a whole number of chunks: the last one is short.
const SIZE = 100 * 1000 * 1000;
const CHUNK = 1024 * 1024;

describe('opensigma drives upload, killed midway and run again, resumes the same drive', () => {
  let t: TestServer;
  let u: CliUser;
  before(async () => {
    t = await startServer();
    u = new CliUser();
    await u.run(['login', t.url, '--user', ADMIN.email, '--password-stdin'], { input: `${ADMIN.password}\n` });
  });
  after(async () => {
    u?.cleanup();
    await t?.close();
  });

  test('the second run sends the missing chunks only, and the download is the file byte for byte', async () => {
    const file = path.join(u.home, 'disk.raw');
    fs.writeFileSync(file, crypto.randomBytes(SIZE));
    const args = ['drives', 'upload', file, '--name', 'disk', '--chunk-size', String(CHUNK)];

    const first = u.spawn(args);
    first.stdout!.resume();
    first.stderr!.resume();
    const exited = new Promise((r) => first.once('exit', r));
    const chunkIn = (uuid: string, n: number) => t.call('GET', `/drives/${uuid}/upload/?resumableChunkNumber=${n}&resumableChunkSize=${CHUNK}`);
    const uuid = await waitFor(async () => (await t.call('GET', '/drives/detail/?name=disk')).body.objects[0]?.uuid, 20000, 'the upload to begin');
    await waitFor(async () => (await chunkIn(uuid, 2)).status === 200, 20000, 'two chunks in');
    first.kill('SIGKILL');
    await exited;
    const half = (await t.call('GET', `/drives/${uuid}/`)).body;
    assert.equal(half.status, 'uploading', 'the kill came before the end (otherwise nothing would be resumed)');
    assert.equal((await chunkIn(uuid, 1)).status, 200);

    const second = await u.run(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, `${uuid}\n`, 'the same drive, resumed');
    assert.equal(second.stderr, '', 'no progress bar drawn without a terminal');
    const drives = (await t.call('GET', '/drives/detail/')).body.objects;
    assert.deepEqual(
      drives.map((d: any) => [d.uuid, d.status, d.size]),
      [[uuid, 'unmounted', SIZE]],
    );

    const back = path.join(u.home, 'back.raw');
    const down = await u.run(['drives', 'download', 'disk', back]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(fs.readFileSync(back).equals(fs.readFileSync(file)), 'downloaded bytes equal the uploaded file');
    assert.equal(fs.existsSync(`${back}.part`), false);

    // Finished: a third run is a new upload, not a resume of the finished drive.
    const third = await u.run([...args.slice(0, 3), '--name', 'again', '--chunk-size', '8M']);
    assert.equal(third.code, 0, third.stderr);
    assert.notEqual(third.stdout.trim(), uuid);
  });
});
