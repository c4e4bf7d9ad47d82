import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, databases, startServer, type TestServer } from './helpers/harness.ts';
import { otherUser, readyDrive } from './helpers/drives.ts';

const basic = (email = ADMIN.email, pw = ADMIN.password) => `Basic ${Buffer.from(`${email}:${pw}`).toString('base64')}`;

/** pycloudsigma's GenericClient headers (requests adds Accept-Encoding, Accept and Connection). */
const CLIENT = { 'user-agent': 'CloudSigma turlo client', 'accept-encoding': 'gzip, deflate', accept: '*/*', connection: 'keep-alive' };

/** Exactly what requests.post(url, files=[(k, str), …]) sends: every field a part with filename = name. */
function multipart(fields: Array<[string, string | Buffer]>): { boundary: string; body: Buffer } {
  const boundary = crypto.randomBytes(16).toString('hex');
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}"\r\n\r\n`));
    parts.push(Buffer.isBuffer(value) ? value : Buffer.from(value));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(parts) };
}

/** pycloudsigma's Upload (resumable_upload.py): the chunks of a file, numbered from 1, the last one the bigger. */
function fileChunks(size: number, chunkSize: number): Array<[number, number, number]> {
  const n = Math.floor(size / chunkSize);
  if (n === 0) return [[1, 0, size]];
  const out: Array<[number, number, number]> = [];
  for (let c = 0; c < n - 1; c++) out.push([c + 1, c * chunkSize, chunkSize]);
  out.push([n, (n - 1) * chunkSize, size - (n - 1) * chunkSize]);
  return out;
}

/** One chunk as Upload.upload_chunk sends it: the resumable.js test GET, then (unless 2xx) the multipart POST. */
async function pycloudsigmaChunk(
  t: TestServer,
  uuid: string,
  file: Buffer,
  name: string,
  chunkSize: number,
  [num, offset, len]: [number, number, number],
  auth = basic(),
) {
  const fields: Array<[string, string]> = [
    ['resumableChunkNumber', String(num)],
    ['resumableChunkSize', String(chunkSize)],
    ['resumableTotalSize', String(file.length)],
    ['resumableIdentifier', name],
    ['resumableFilename', name],
  ];
  const url = `${t.api}/drives/${uuid}/upload/`;
  const probe = await fetch(`${url}?${new URLSearchParams(fields)}`, { headers: { ...CLIENT, authorization: auth } });
  await probe.arrayBuffer();
  if (probe.status >= 200 && probe.status < 300) return { tested: probe.status, posted: null as number | null, text: '' };
  const { boundary, body } = multipart([...fields, ['file', file.subarray(offset, offset + len)]]);
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...CLIENT, 'content-length': String(body.length), 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: auth },
    body: body as unknown as BodyInit,
  });
  return { tested: probe.status, posted: res.status, text: await res.text() };
}

async function initUpload(t: TestServer, size: number, wrapped = true) {
  const item = { name: 'Upload_2026-11-26 22:40:00', media: 'disk', size };
  return t.call('POST', '/initupload/', wrapped ? { objects: [item] } : item, { 'user-agent': 'CloudSigma turlo client' });
}

async function download(t: TestServer, uuid: string) {
  const res = await fetch(`${t.api}/drives/${uuid}/download/`, { headers: { authorization: basic() } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

const files = (t: TestServer) => (fs.existsSync(path.join(t.dataDir, 'drives')) ? fs.readdirSync(path.join(t.dataDir, 'drives')) : []);

for (const db of databases()) {
  describe(`resumable upload as pycloudsigma does it [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t?.close());

    test("pycloudsigma's Upload: initupload, then chunks tested and posted out of order and retried, complete only when every chunk is in", async () => {
      const file = crypto.randomBytes(29);
      const chunkSize = 8;
      const init = await initUpload(t, file.length);
      assert.equal(init.status, 201, init.text);
      const drive = init.body.objects[0];
      assert.equal(drive.status, 'uploading');
      assert.equal(drive.size, file.length, 'the drive keeps the exact size: the client compares it with its file');
      // Upload.remote_size
      assert.equal((await t.call('GET', `/drives/${drive.uuid}/`)).body.size, file.length);

      const chunks = fileChunks(file.length, chunkSize);
      assert.deepEqual(chunks, [
        [1, 0, 8],
        [2, 8, 8],
        [3, 16, 13],
      ]);
      const last = await pycloudsigmaChunk(t, drive.uuid, file, 'img.raw', chunkSize, chunks[2]!);
      assert.equal(last.tested, 404);
      assert.equal(last.posted, 200, last.text);
      const first = await pycloudsigmaChunk(t, drive.uuid, file, 'img.raw', chunkSize, chunks[0]!);
      assert.equal(first.posted, 200, first.text);

      // Incomplete: still uploading, not downloadable, not attachable, and no image file that could pass for the drive.
      assert.equal((await t.call('GET', `/drives/${drive.uuid}/`)).body.status, 'uploading');
      assert.equal((await download(t, drive.uuid)).status, 403);
      assert.ok(!files(t).includes(`${drive.uuid}.img`));
      const srv = await t.call('POST', '/servers/', {
        objects: [
          {
            name: 's',
            cpu: 1000,
            mem: 536870912,
            vnc_password: 'testserver',
            drives: [{ drive: drive.uuid, dev_channel: '0:0', device: 'virtio', boot_order: 1 }],
          },
        ],
      });
      assert.equal(srv.status, 403, srv.text);

      // A retried chunk is skipped by its test request, and a second POST of it changes nothing.
      const again = await pycloudsigmaChunk(t, drive.uuid, file, 'img.raw', chunkSize, chunks[0]!);
      assert.deepEqual([again.tested, again.posted], [200, null]);
      const { boundary, body } = multipart([
        ['resumableChunkNumber', '1'],
        ['resumableChunkSize', '8'],
        ['resumableTotalSize', '29'],
        ['file', Buffer.alloc(8, 0x41)],
      ]);
      const rewrite = await fetch(`${t.api}/drives/${drive.uuid}/upload/`, {
        method: 'POST',
        headers: { authorization: basic(), 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: body as unknown as BodyInit,
      });
      assert.equal(rewrite.status, 200);

      const middle = await pycloudsigmaChunk(t, drive.uuid, file, 'img.raw', chunkSize, chunks[1]!);
      assert.equal(middle.posted, 200, middle.text);
      const done = await t.call('GET', `/drives/${drive.uuid}/`);
      assert.equal(done.body.status, 'unmounted');
      assert.equal(done.body.size, 29);
      const got = await download(t, drive.uuid);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(file), 'the drive holds the file byte for byte');
      // Resuming a finished upload finds every chunk in.
      for (const c of chunks) assert.equal((await pycloudsigmaChunk(t, drive.uuid, file, 'img.raw', chunkSize, c)).tested, 200);
    });

    test('chunks sent in parallel (pycloudsigma runs 4 threads) all land at their offsets', async () => {
      const file = crypto.randomBytes(100_003);
      const chunkSize = 4096;
      const drive = (await initUpload(t, file.length)).body.objects[0];
      const chunks = fileChunks(file.length, chunkSize);
      const results = await Promise.all(chunks.map((c) => pycloudsigmaChunk(t, drive.uuid, file, 'big.raw', chunkSize, c)));
      assert.ok(
        results.every((r) => r.posted === 200),
        JSON.stringify(results.find((r) => r.posted !== 200)),
      );
      assert.equal((await t.call('GET', `/drives/${drive.uuid}/`)).body.status, 'unmounted');
      assert.ok((await download(t, drive.uuid)).body.equals(file));
    });

    test("pycloudsigma's upload client: initupload with a bare body, ?do=upload_chunk for a link, raw chunk bytes, 416 for a chunk already in", async () => {
      const file = crypto.randomBytes(20);
      const init = await initUpload(t, file.length, false);
      assert.equal(init.status, 201, init.text);
      const uuid = init.body.objects[0].uuid;
      // CSUploader numbers chunks from 0.
      for (const [num, offset, len] of [
        [1, 10, 10],
        [0, 0, 10],
      ] as const) {
        const link = await t.call('POST', `/drives/${uuid}/action/?do=upload_chunk`, { chunk_number: num, chunk_size: 10 });
        assert.equal(link.status, 200, link.text);
        assert.match(link.body.link, new RegExp(`^/api/2\\.0/drives/${uuid}/upload/\\?`));
        const res = await fetch(`${t.url}${link.body.link}`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', accept: 'application/json', authorization: basic() },
          body: file.subarray(offset, offset + len) as unknown as BodyInit,
        });
        assert.equal(res.status, 200, await res.text());
      }
      const again = await t.call('POST', `/drives/${uuid}/action/?do=upload_chunk`, { chunk_number: 0, chunk_size: 10 });
      assert.equal(again.status, 416);
      assert.equal(again.body[0].error_type, 'validation');
      assert.equal((await t.call('GET', `/drives/${uuid}/`)).body.status, 'unmounted');
      assert.ok((await download(t, uuid)).body.equals(file));
    });

    test('bad input to initupload and to chunks gets the error array and changes nothing', async () => {
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      for (const body of [
        { objects: [{ name: 'x', media: 'disk' }] },
        { objects: [{ name: 'x', media: 'disk', size: 'big' }] },
        { objects: [{ name: 'x', media: 'tape', size: 10 }] },
        { objects: [] },
        [1],
        { name: 'x', size: 10, tags: ['00000000-0000-0000-0000-000000000000'] },
        { name: 'x', size: 1e15 },
      ]) {
        const r = await t.call('POST', '/initupload/', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.ok(Array.isArray(r.body) && r.body[0].error_type === 'validation', r.text);
      }
      assert.equal((await t.call('GET', '/drives/?limit=0')).body.meta.total_count, before);

      const file = crypto.randomBytes(16);
      const uuid = (await initUpload(t, file.length)).body.objects[0].uuid;
      const post = async (fields: Array<[string, string | Buffer]>, auth = basic()) => {
        const { boundary, body } = multipart(fields);
        const res = await fetch(`${t.api}/drives/${uuid}/upload/`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
          body: body as unknown as BodyInit,
        });
        return { status: res.status, body: await res.json() };
      };
      const bad: Array<Array<[string, string | Buffer]>> = [
        [
          ['resumableChunkNumber', '1'],
          ['resumableChunkSize', '8'],
          ['resumableTotalSize', '17'],
          ['file', file.subarray(0, 8)],
        ], // not the drive's size
        [
          ['resumableChunkNumber', '3'],
          ['resumableChunkSize', '8'],
          ['file', file.subarray(0, 8)],
        ], // no third chunk
        [
          ['resumableChunkNumber', '1'],
          ['resumableChunkSize', '8'],
          ['file', file.subarray(0, 5)],
        ], // short chunk
        [
          ['resumableChunkNumber', 'one'],
          ['resumableChunkSize', '8'],
          ['file', file.subarray(0, 8)],
        ],
        [
          ['resumableChunkNumber', '1'],
          ['resumableChunkSize', '8'],
        ], // no file
        [
          ['resumableChunkNumber', '1'],
          ['resumableChunkSize', String(64 * 1024 * 1024)],
          ['file', file.subarray(0, 8)],
        ],
      ];
      for (const fields of bad) {
        const r = await post(fields);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body[0].error_type, 'validation');
      }
      const malformed = await fetch(`${t.api}/drives/${uuid}/upload/`, {
        method: 'POST',
        headers: { authorization: basic(), 'content-type': 'multipart/form-data; boundary=zzz' },
        body: 'garbage',
      });
      assert.equal(malformed.status, 400);
      const noChunk = await fetch(`${t.api}/drives/${uuid}/upload/`, {
        method: 'POST',
        headers: { authorization: basic(), 'content-type': 'application/octet-stream' },
        body: 'x',
      });
      assert.equal(noChunk.status, 400);
      assert.equal((await t.call('POST', `/drives/${uuid}/action/?do=upload_chunk`, { chunk_number: -1, chunk_size: 8 })).status, 400);
      assert.equal((await t.call('POST', `/drives/${uuid}/action/?do=upload_chunk`, { chunk_size: 8 })).status, 400);

      // Another account cannot see the upload, let alone write into it.
      const other = await otherUser(t);
      await other('GET', '/drives/');
      const theirs = await post(
        [
          ['resumableChunkNumber', '1'],
          ['resumableChunkSize', '8'],
          ['file', file.subarray(0, 8)],
        ],
        basic('other@example.com', 'other-password'),
      );
      assert.equal(theirs.status, 404);

      // A chunk size, once written, is the upload's.
      assert.equal(
        (
          await post([
            ['resumableChunkNumber', '1'],
            ['resumableChunkSize', '8'],
            ['file', file.subarray(0, 8)],
          ])
        ).status,
        200,
      );
      assert.equal(
        (
          await post([
            ['resumableChunkNumber', '2'],
            ['resumableChunkSize', '4'],
            ['file', file.subarray(4, 8)],
          ])
        ).status,
        400,
      );
      assert.equal((await t.call('GET', `/drives/${uuid}/`)).body.status, 'uploading');

      // A drive that is not being uploaded takes no chunks.
      const plain = await readyDrive(t);
      const r = await fetch(`${t.api}/drives/${plain.uuid}/upload/?resumableChunkNumber=1&resumableChunkSize=8`, { headers: { authorization: basic() } });
      assert.equal(r.status, 403);

      // An abandoned upload can be deleted, and leaves no file.
      assert.equal((await t.call('DELETE', `/drives/${uuid}/`)).status, 204);
      assert.ok(!files(t).some((f) => f.startsWith(uuid)));
    });
  });
}
