import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { ADMIN, databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { GiB, readyDrive, waitForDrive } from './helpers/drives.ts';

// Regression: a clone whose source bytes were gone made an empty drive and called it a success; a failed copy or
// resize ended its job `failed` with nothing saying why, and an upload the storage refused answered 500 "unknown error".
for (const db of databases()) {
  describe(`a failed clone, resize or upload says why [${db.name}]`, () => {
    let t: TestServer;
    let frames: any[];
    let ws: WebSocket;
    const drives = () => path.join(t.dataDir, 'drives');
    const img = (uuid: string) => path.join(drives(), `${uuid}.img`);
    const logOf = async (uuid: string, action: string) =>
      waitFor(
        async () => ((await t.call('GET', `/logs/?uuid=${uuid}`)).body.objects as any[]).find((l) => l.action === action) ?? null,
        10000,
        `${action} entry`,
      );
    const endedJob = async (uuid: string) =>
      waitFor(
        async () => {
          const j = (await t.call('GET', `/jobs/${uuid}/`)).body;
          return j.state === 'started' ? null : j;
        },
        15000,
        `job ${uuid} to end`,
      );

    before(async () => {
      t = await startServer({}, db);
      const r = await t.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
      ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/websocket`, { headers: { cookie } });
      frames = [];
      ws.on('message', (m) => frames.push(JSON.parse(String(m))));
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    });
    after(async () => {
      ws?.close();
      await t.close();
    });

    test('a clone of a drive whose bytes are gone: job failed with the reason, no empty copy, the source back to unmounted', async () => {
      const src = await readyDrive(t, { name: 'lost-bytes' });
      fs.rmSync(img(src.uuid));
      const c = await t.call('POST', `/drives/${src.uuid}/action/?do=clone`, {});
      assert.equal(c.status, 202, c.text);
      const copy = c.body.objects[0];
      const job = await endedJob(copy.jobs[0].uuid);
      assert.equal(job.state, 'failed');
      assert.equal(job.operation, 'drive_clone');
      assert.match(job.data.error_message, new RegExp(`bytes of drive ${src.uuid} are not in the drive storage`));
      assert.equal(job.data.error_type, 'backend');
      assert.equal((await t.call('GET', `/drives/${copy.uuid}/`)).status, 404);
      await waitForDrive(t, src.uuid, 'unmounted');
      assert.ok(!fs.readdirSync(drives()).some((f) => f.startsWith(copy.uuid)), 'nothing of the copy stays in the storage');
      const entry = await logOf(copy.uuid, 'clone');
      assert.equal(entry.success, false);
      assert.equal(entry.error_type, 'backend');
      assert.match(entry.error_message, /are not in the drive storage/);
      const frame = await waitFor(async () => frames.find((f) => f.resource_uri.includes(copy.uuid) && f.error) ?? null);
      assert.match(frame.error, /are not in the drive storage/);
      assert.ok(frames.some((f) => f.resource_type === 'jobs' && f.object?.state === 'failed' && f.object.data.error_message));
    });

    test('a clone whose copy fails (an unreadable image): the job carries the tool’s words, and so does its server_clone parent', async () => {
      const disk = await readyDrive(t, { name: 'garbled' });
      fs.rmSync(img(disk.uuid));
      fs.writeFileSync(path.join(drives(), `${disk.uuid}.qcow2`), 'not an image');
      const s = (
        await t.call(
          'POST',
          '/servers/',
          minimalServer('with-garbled', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: disk.uuid }] }),
        )
      ).body.objects[0];
      const c = await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, {});
      assert.equal(c.status, 202, c.text);
      const parent = await endedJob(c.body.jobs[0].uuid);
      assert.equal(parent.operation, 'server_clone');
      assert.equal(parent.state, 'failed');
      assert.equal(parent.children.length, 1);
      assert.equal(parent.children[0].state, 'failed');
      assert.match(parent.children[0].data.error_message, new RegExp(`^Cloning drive ${disk.uuid} failed: .+`));
      assert.equal(parent.data.error_message, parent.children[0].data.error_message);
      await waitForDrive(t, disk.uuid, 'mounted');
    });

    test('a resize of a drive whose bytes are gone: back to unmounted at its old size, the reason in the audit log and a frame', async () => {
      const d = await readyDrive(t, { name: 'resize-lost' });
      fs.rmSync(img(d.uuid));
      const r = await t.call('PUT', `/drives/${d.uuid}/`, { name: d.name, media: 'disk', size: 2 * GiB });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, 'resizing');
      const back = await waitForDrive(t, d.uuid, 'unmounted');
      assert.equal(back.size, GiB);
      assert.ok(!fs.existsSync(img(d.uuid)), 'no empty image was made up');
      const entry = await logOf(d.uuid, 'resize');
      assert.equal(entry.success, false);
      assert.match(
        entry.error_message,
        new RegExp(`Resizing drive ${d.uuid} to ${2 * GiB} bytes failed: .*not in the drive storage.*keeps its size of ${GiB} bytes`),
      );
      const frame = await waitFor(async () => frames.find((f) => f.object?.uuid === d.uuid && f.error) ?? null);
      assert.equal(frame.object.status, 'unmounted');
      assert.match(frame.error, /Resizing drive/);
    });

    test('an upload the storage refuses answers with the reason, leaves no drive, and is in the audit log', async () => {
      const before = (await t.call('GET', '/drives/?limit=0')).body.meta.total_count;
      const moved = `${drives()}.away`;
      // The storage dir turns into a plain file: what a mount gone wrong can leave.
      fs.renameSync(drives(), moved);
      fs.writeFileSync(drives(), '');
      try {
        const up = await fetch(`${t.url}/api/2.0/drives/upload/`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
          body: Buffer.alloc(100000, 7),
        });
        assert.equal(up.status, 503, 'the storage is unavailable, not full');
        const body = (await up.json()) as any[];
        assert.equal(body[0].error_type, 'backend');
        assert.match(body[0].error_message, /^The upload failed: the drive storage .+; no drive was made$/);
        assert.doesNotMatch(body[0].error_message, new RegExp(t.dataDir), 'no path of the operator’s machine');
        const logs = (await t.call('GET', '/logs/?limit=0')).body.objects as any[];
        const entry = logs.find((l) => l.category === 'Drives' && l.action === 'upload');
        assert.ok(entry, 'an upload entry');
        assert.equal(entry.success, false);
        assert.equal(entry.error_message, body[0].error_message);
      } finally {
        fs.rmSync(drives());
        fs.renameSync(moved, drives());
      }
      assert.equal((await t.call('GET', '/drives/?limit=0')).body.meta.total_count, before);
    });

    test('a resumable chunk the storage refuses answers the reason; the upload waits, and the chunk sent again completes it', async () => {
      const init = await t.call('POST', '/initupload/', { objects: [{ name: 'resumable-refused', media: 'disk', size: 16 }] });
      assert.equal(init.status, 201, init.text);
      const uuid = init.body.objects[0].uuid as string;
      const part = path.join(drives(), `${uuid}.img.part`);
      const bytes = Buffer.from('0123456789abcdef');
      const send = () =>
        fetch(`${t.api}/drives/${uuid}/upload/?resumableChunkNumber=1&resumableChunkSize=16&resumableTotalSize=16`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
          body: bytes,
        });
      // The upload's file turns into a directory: the storage cannot write it.
      fs.rmSync(part);
      fs.mkdirSync(part);
      const refused = await send();
      assert.equal(refused.status, 503);
      const body = (await refused.json()) as any[];
      assert.equal(body[0].error_type, 'backend');
      assert.match(body[0].error_message, /^Chunk 1 of the upload failed: the drive storage .+; send it again once the storage is back$/);
      assert.equal((await t.call('GET', `/drives/${uuid}/`)).body.status, 'uploading');
      assert.ok((await t.call('GET', `/logs/?uuid=${uuid}`)).body.objects.some((l: any) => l.action === 'upload' && l.success === false));
      fs.rmdirSync(part);
      fs.writeFileSync(part, Buffer.alloc(16));
      assert.equal((await send()).status, 200);
      await waitForDrive(t, uuid, 'unmounted');
      assert.ok(fs.readFileSync(img(uuid)).equals(bytes));
    });

    test('a chunk written to a full disk answers 507 with the error array, and nothing half written counts', async () => {
      const init = await t.call('POST', '/initupload/', { objects: [{ name: 'resumable-full', media: 'disk', size: 16 }] });
      const uuid = init.body.objects[0].uuid as string;
      const part = path.join(drives(), `${uuid}.img.part`);
      const send = () =>
        fetch(`${t.api}/drives/${uuid}/upload/?resumableChunkNumber=1&resumableChunkSize=16&resumableTotalSize=16`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
          body: Buffer.from('fedcba9876543210'),
        });
      // /dev/full answers every write with ENOSPC: the disk is full, for real, without root or a tmpfs.
      fs.rmSync(part);
      fs.symlinkSync('/dev/full', part);
      const full = await send();
      assert.equal(full.status, 507);
      assert.deepEqual(await full.json(), [
        {
          error_message: 'Chunk 1 of the upload failed: the drive storage is full; send it again once the storage is back',
          error_point: null,
          error_type: 'backend',
        },
      ]);
      assert.equal((await t.call('GET', `/drives/${uuid}/`)).body.status, 'uploading');
      fs.rmSync(part);
      fs.writeFileSync(part, Buffer.alloc(16));
      assert.equal((await send()).status, 200, 'the chunk was not counted as in');
      await waitForDrive(t, uuid, 'unmounted');
      assert.ok(fs.readFileSync(img(uuid)).equals(Buffer.from('fedcba9876543210')));
    });
  });
}
