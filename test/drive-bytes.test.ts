import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ADMIN, databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { GiB, otherUser, readyDrive, waitForDrive } from './helpers/drives.ts';

const basic = (email = ADMIN.email, pw = ADMIN.password) => `Basic ${Buffer.from(`${email}:${pw}`).toString('base64')}`;
const MIN = 536870912;

function imageOf(t: TestServer, uuid: string): string {
  return path.join(t.dataDir, 'drives', `${uuid}.img`);
}

function driveFiles(t: TestServer): string[] {
  const dir = path.join(t.dataDir, 'drives');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

async function upload(t: TestServer, data: Buffer, suffix = '', auth = basic()) {
  const res = await fetch(`${t.api}/drives/upload/${suffix}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/octet-stream' },
    body: data as unknown as BodyInit,
  });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

async function download(t: TestServer, uuid: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.api}/drives/${uuid}/download/`, { headers: { authorization: basic(), ...headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

for (const db of databases()) {
  describe(`drive bytes [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('a new drive is a sparse image of its size: 100 GiB cost nothing', async () => {
      const d = await readyDrive(t, { size: 100 * GiB });
      const st = fs.statSync(imageOf(t, d.uuid));
      assert.equal(st.size, 100 * GiB);
      assert.ok(st.blocks * 512 < 1024 * 1024, `allocated ${st.blocks * 512} bytes`);
    });

    test('upload then download round-trips random bytes; the drive is as big as the body, grown to the minimum size', async () => {
      const data = crypto.randomBytes(3 * 1024 * 1024 + 123);
      const up = await upload(t, data, 'my-image.raw');
      assert.equal(up.status, 201);
      assert.match(up.type!, /^text\/plain/);
      const uuid = up.text.trim();
      assert.match(uuid, /^[0-9a-f-]{36}$/);
      const d = await waitForDrive(t, uuid, 'unmounted');
      assert.equal(d.size, MIN);
      assert.equal(d.media, 'disk');
      const all = await download(t, uuid);
      assert.equal(all.status, 200);
      assert.equal(all.headers.get('content-type'), 'application/octet-stream');
      assert.match(all.headers.get('content-disposition')!, new RegExp(uuid));
      assert.equal(all.body.length, MIN);
      assert.ok(all.body.subarray(0, data.length).equals(data));
      assert.ok(all.body.subarray(data.length).every((b) => b === 0));
      // what pycloudsigma's upload test does: ask for the uploaded length only
      const part = await download(t, uuid, { range: `bytes=0-${data.length - 1}` });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 0-${data.length - 1}/${MIN}`);
      assert.ok(part.body.equals(data));
      const tail = await download(t, uuid, { range: 'bytes=-16' });
      assert.equal(tail.body.length, 16);
      const bad = await download(t, uuid, { range: `bytes=${MIN}-` });
      assert.equal(bad.status, 416);
      assert.equal(bad.headers.get('content-range'), `bytes */${MIN}`);
    });

    test('a body larger than the minimum becomes a drive of that size (rounded up to 16 KiB)', async () => {
      const big = Buffer.alloc(MIN + 5);
      big.write('hello', MIN);
      const up = await upload(t, big);
      assert.equal(up.status, 201);
      const d = await waitForDrive(t, up.text, 'unmounted');
      assert.equal(d.size, MIN + 16384);
      const end = await download(t, up.text, { range: `bytes=${MIN}-${MIN + 4}` });
      assert.equal(end.body.toString(), 'hello');
    });

    test('upload takes Basic auth only; downloads of other accounts and busy drives are refused', async () => {
      const token = (await t.running.svc.store.users.issueToken((await t.running.svc.store.users.byEmail(ADMIN.email))!.uuid, 'api', null)).token;
      const bearer = await upload(t, Buffer.from('x'), '', `Bearer ${token}`);
      assert.equal(bearer.status, 401);
      const none = await fetch(`${t.api}/drives/upload/`, { method: 'POST', body: 'x' });
      assert.equal(none.status, 401);
      const up = await upload(t, Buffer.from('mine'));
      await waitForDrive(t, up.text, 'unmounted');
      const other = await otherUser(t);
      void other;
      const res = await fetch(`${t.api}/drives/${up.text}/download/`, { headers: { authorization: basic('other@example.com', 'other-password') } });
      assert.equal(res.status, 404);
      const missing = await download(t, '00000000-0000-4000-8000-000000000000');
      assert.equal(missing.status, 404);
    });

    test('an upload sent in many small chunks (more than fit one write call) round-trips byte for byte', async () => {
      // Chunked encoding in 1000-byte pieces: the server gets each piece as its own buffer, thousands per MiB batch.
      const data = crypto.randomBytes(5 * 1024 * 1024 + 7);
      const url = new URL(`${t.api}/drives/upload/`);
      const uuid = await new Promise<string>((resolve, reject) => {
        const req = http.request({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { authorization: basic(), 'content-type': 'application/octet-stream' },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => (res.statusCode === 201 ? resolve(text.trim()) : reject(new Error(`${res.statusCode} ${text}`))));
        });
        for (let i = 0; i < data.length; i += 1000) req.write(data.subarray(i, i + 1000));
        req.end();
      });
      await waitForDrive(t, uuid, 'unmounted');
      const back = await download(t, uuid, { range: `bytes=0-${data.length - 1}` });
      assert.equal(back.body.length, data.length);
      assert.ok(back.body.equals(data));
    });

    test('an interrupted upload leaves no drive and no file behind', async () => {
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      const url = new URL(`${t.api}/drives/upload/`);
      let sawUploading = false;
      await new Promise<void>((resolve) => {
        const req = http.request({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { authorization: basic(), 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024) },
        });
        req.on('error', () => resolve());
        req.write(crypto.randomBytes(1024 * 1024), async () => {
          // the drive exists meanwhile, status uploading
          await waitFor(
            async () => {
              const list = await t.call('GET', '/drives/detail/?limit=0');
              sawUploading = list.body.objects.some((d: any) => d.status === 'uploading');
              return sawUploading;
            },
            5000,
            'an uploading drive',
          );
          req.destroy();
          resolve();
        });
      });
      assert.ok(sawUploading);
      await waitFor(async () => (await t.call('GET', '/drives/?limit=0')).body.meta.total_count === before, 5000, 'the half upload to go');
      await waitFor(async () => !driveFiles(t).some((f) => f.endsWith('.part')), 5000, 'no partial file');
      const uploads = (await t.call('GET', '/drives/detail/?limit=0')).body.objects.filter((d: any) => d.status === 'uploading');
      assert.deepEqual(uploads, []);
    });

    test('clone copies the content and keeps a sparse source sparse; resize grows the image', async () => {
      const data = crypto.randomBytes(256 * 1024);
      const up = await upload(t, data);
      const src = await waitForDrive(t, up.text, 'unmounted');
      // write something far into the drive too, so the clone has data after a hole
      const fd = fs.openSync(imageOf(t, src.uuid), 'r+');
      fs.writeSync(fd, Buffer.from('far away'), 0, 8, 400 * 1024 * 1024);
      fs.closeSync(fd);
      const c = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, { name: 'copy', size: GiB });
      assert.equal(c.status, 202);
      const copy = await waitForDrive(t, c.body.objects[0].uuid, 'unmounted');
      assert.equal(copy.size, GiB);
      const file = imageOf(t, copy.uuid);
      const st = fs.statSync(file);
      assert.equal(st.size, GiB);
      assert.ok(st.blocks * 512 < 16 * 1024 * 1024, `the clone allocated ${st.blocks * 512} bytes`);
      const fdc = fs.openSync(file, 'r');
      const head = Buffer.alloc(data.length);
      fs.readSync(fdc, head, 0, data.length, 0);
      const far = Buffer.alloc(8);
      fs.readSync(fdc, far, 0, 8, 400 * 1024 * 1024);
      fs.closeSync(fdc);
      assert.ok(head.equals(data));
      assert.equal(far.toString(), 'far away');

      const r = await t.call('PUT', `/drives/${copy.uuid}/`, { name: 'copy', media: 'disk', size: 2 * GiB });
      assert.equal(r.status, 200);
      const grown = await waitFor(async () => {
        const g = await t.call('GET', `/drives/${copy.uuid}/`);
        return g.body.status === 'unmounted' && g.body.size === 2 * GiB ? g.body : null;
      });
      assert.equal(grown.size, 2 * GiB);
      assert.equal(fs.statSync(file).size, 2 * GiB);
      const again = Buffer.alloc(data.length);
      const fd2 = fs.openSync(file, 'r');
      fs.readSync(fd2, again, 0, data.length, 0);
      fs.closeSync(fd2);
      assert.ok(again.equals(data));
    });

    test('deleting a drive removes its image', async () => {
      const d = await readyDrive(t);
      assert.ok(fs.existsSync(imageOf(t, d.uuid)));
      assert.equal((await t.call('DELETE', `/drives/${d.uuid}/`)).status, 204);
      assert.ok(!fs.existsSync(imageOf(t, d.uuid)));
    });
  });
}
