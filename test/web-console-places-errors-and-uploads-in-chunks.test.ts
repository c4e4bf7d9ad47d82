import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { placeErrors, asErrors } from '../web/src/errors.ts';
import { planChunks, sendChunks, type UploadIo } from '../web/src/upload.ts';
import { ADMIN, startServer, waitFor, type TestServer } from './helpers/harness.ts';

/** The web console's logic that is not layout, run in Node against the real API. */
describe('web console: where an error is shown', () => {
  const fields = ['name', 'cpu', 'mem', 'boot', 'dhcp'];
  test('beside the field its error_point names, even when the point goes deeper than the form', () => {
    const placed = placeErrors(
      [
        { error_message: 'cpu must be between 250 and 96000 MHz, not 5', error_point: 'cpu', error_type: 'validation' },
        { error_message: 'bad conf', error_point: 'nics.0.ip_v4_conf.conf', error_type: 'validation' },
        { error_message: 'no such drive', error_point: 'drives.0.drive', error_type: 'validation' },
      ],
      fields,
      { nics: 'dhcp', drives: 'boot' },
    );
    assert.deepEqual(placed.fields, { cpu: ['cpu must be between 250 and 96000 MHz, not 5'], dhcp: ['bad conf'], boot: ['no such drive'] });
    assert.deepEqual(placed.general, []);
  });
  test('above the form when no field of it is named, or none at all', () => {
    const placed = placeErrors(
      [
        { error_message: 'Not enough capacity', error_point: null, error_type: 'concurrency' },
        { error_message: 'vlan is wrong', error_point: 'vlan', error_type: 'validation' },
      ],
      fields,
    );
    assert.deepEqual(placed.fields, {});
    assert.deepEqual(placed.general, ['Not enough capacity', 'vlan is wrong']);
  });
  test("an answer that is not the API's error array still says something", () => {
    assert.deepEqual(asErrors(502, '<html>Bad gateway</html>'), [{ error_message: 'The server answered 502', error_point: null, error_type: 'backend' }]);
  });
});

describe('web console: uploads in chunks', () => {
  test('chunks are numbered from 1; the last takes the rest, as resumable.js cuts them', () => {
    assert.deepEqual(planChunks(10, 4), [
      { number: 1, offset: 0, length: 4 },
      { number: 2, offset: 4, length: 6 },
    ]);
    assert.deepEqual(planChunks(3, 4), [{ number: 1, offset: 0, length: 3 }]);
    assert.equal(planChunks(8 * 1024 * 1024).length, 8);
    assert.throws(() => planChunks(0), /not empty/);
  });

  let t: TestServer;
  before(async () => (t = await startServer()));
  after(async () => t.close());

  test('a file goes up chunk by chunk into a new drive, skipping a chunk already sent, progress rising to 1', async () => {
    const auth = { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}` };
    const size = 2 * 1024 * 1024 + 777;
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 512) bytes.writeUInt32LE(i ^ 0x5a5a5a5a, i);
    const file = new Blob([bytes]);
    const d = (await t.call('POST', '/initupload/', { name: 'chunked.img', media: 'disk', size })).body.objects[0];
    const sent: string[] = [];
    const io: UploadIo = {
      has: async (url) => (await fetch(`${t.url}${url}`, { headers: auth })).status === 200,
      send: async (url, blob, onBytes) => {
        sent.push(new URL(url, t.url).searchParams.get('resumableChunkNumber')!);
        const body = Buffer.from(await blob.arrayBuffer());
        const r = await fetch(`${t.url}${url}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body });
        if (r.status !== 200) throw new Error(`chunk: ${r.status} ${await r.text()}`);
        onBytes(blob.size);
      },
    };
    // A chunk sent by an earlier try of the same upload: the server has it, so it is not sent again.
    const second = `/api/2.0/drives/${d.uuid}/upload/?resumableChunkNumber=2&resumableChunkSize=${1024 * 1024}&resumableTotalSize=${size}`;
    await io.send(second, file.slice(1024 * 1024, size), () => {});
    sent.length = 0;
    const progress: number[] = [];
    await sendChunks(file, '/api/2.0', d.uuid, io, (f) => progress.push(f));
    assert.deepEqual(sent, ['1'], 'only the missing chunk went up');
    assert.equal(progress.at(-1), 1);
    assert.deepEqual(
      [...progress].sort((a, b) => a - b),
      progress,
      'progress never goes back',
    );
    await waitFor(async () => (await t.call('GET', `/drives/${d.uuid}/`)).body.status === 'unmounted', 10_000, 'the drive to be ready');
    const back = Buffer.from(await (await fetch(`${t.api}/drives/${d.uuid}/download/`, { headers: auth })).arrayBuffer());
    assert.ok(back.subarray(0, size).equals(bytes));
  });

  test('a chunk the server refuses is tried again, then the upload stops with its error', async () => {
    const d = (await t.call('POST', '/initupload/', { name: 'refused.img', media: 'disk', size: 100 })).body.objects[0];
    let tries = 0;
    const io: UploadIo = {
      has: async () => false,
      send: async () => {
        tries++;
        throw new Error('cut off');
      },
    };
    await assert.rejects(
      sendChunks(new Blob([Buffer.alloc(100)]), '/api/2.0', d.uuid, io, () => {}),
      /cut off/,
    );
    assert.equal(tries, 3);
    assert.equal((await t.call('GET', `/drives/${d.uuid}/`)).body.status, 'uploading', 'nothing was written');
  });
});
