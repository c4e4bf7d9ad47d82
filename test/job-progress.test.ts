import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { ADMIN, databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const basic = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

/** Job frames seen on the websocket, by job uuid, in the order they came. */
async function jobFrames(t: TestServer): Promise<{ byJob: Map<string, any[]>; untilEnd(uuid: string): Promise<any[]>; close(): void }> {
  const r = await t.call('POST', '/accounts/action/?do=authenticate_asynchronous', {});
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const ws = new WebSocket(t.url.replace(/^http/, 'ws') + '/websocket', { headers: { cookie } });
  const byJob = new Map<string, any[]>();
  ws.on('message', (m) => {
    const f = JSON.parse(m.toString());
    if (f.resource_type === 'jobs' && f.object) byJob.set(f.object.uuid, [...(byJob.get(f.object.uuid) ?? []), f.object]);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  /** The frames of a job, once the one telling its end has come. */
  const untilEnd = async (uuid: string): Promise<any[]> =>
    (await waitFor(async () => ((byJob.get(uuid) ?? []).some((f) => f.state !== 'started') ? byJob.get(uuid)! : null), 5000, `final frame of job ${uuid}`))!;
  return { byJob, untilEnd, close: () => ws.close() };
}

/** A drive holding written (not sparse) bytes, so that its clone copies data. */
async function writtenDrive(t: TestServer, bytes: number): Promise<string> {
  const res = await fetch(`${t.api}/drives/upload/`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/octet-stream' },
    body: crypto.randomBytes(bytes) as unknown as BodyInit,
  });
  assert.equal(res.status, 201);
  return (await res.text()).trim();
}

/** What a job's progress must look like wherever it is seen: whole numbers 0..100 that never go back. */
function assertProgressContract(seen: number[], what: string) {
  assert.ok(seen.length > 0, `${what}: no progress seen`);
  for (const p of seen) assert.ok(Number.isInteger(p) && p >= 0 && p <= 100, `${what}: progress ${p}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `${what}: progress went back: ${seen.join(',')}`);
  assert.equal(seen.at(-1), 100, `${what}: ends at ${seen.at(-1)}`);
}

for (const db of databases()) {
  describe(`job progress [${db.name}]`, () => {
    let t: TestServer;
    let ws: Awaited<ReturnType<typeof jobFrames>>;
    before(async () => {
      t = await startServer({}, db);
      ws = await jobFrames(t);
    });
    after(async () => {
      ws?.close();
      await t?.close();
    });

    test('a drive clone job moves forward only, through GET /jobs/ and websocket frames, and ends at 100 with success', async () => {
      const src = await writtenDrive(t, 24 * 1024 * 1024);
      const c = await t.call('POST', `/drives/${src}/action/?do=clone`, { name: 'progress-clone' });
      assert.equal(c.status, 202);
      const jobRef = c.body.objects[0].jobs[0];
      assert.ok(jobRef, 'the clone answer shows its running job');
      const polled: number[] = [];
      const job = await waitFor(
        async () => {
          const j = (await t.call('GET', `/jobs/${jobRef.uuid}/`)).body;
          polled.push(j.data.progress);
          return j.state === 'success' ? j : null;
        },
        20000,
        'drive_clone job to succeed',
      );
      assertProgressContract(polled, 'GET /jobs/');
      assert.deepEqual(job.data, { progress: 100 });
      assert.equal(job.operation, 'drive_clone');
      assert.deepEqual(job.children, []);
      assert.deepEqual(job.resources, [`/api/2.0/drives/${src}/`, `/api/2.0/drives/${c.body.objects[0].uuid}/`]);
      const frames = await ws.untilEnd(jobRef.uuid);
      assertProgressContract(
        frames.map((f: any) => f.data.progress),
        'websocket',
      );
      assert.equal(frames.at(-1)!.state, 'success');
    });

    test('a server clone job: its drive_clone child and itself both move forward only and end at 100, shaped as response_jobs_server_clone', async () => {
      const d = await writtenDrive(t, 8 * 1024 * 1024);
      const s = (
        await t.call('POST', '/servers/', minimalServer('progress-src', { drives: [{ drive: d, device: 'virtio', dev_channel: '0:0', boot_order: 1 }] }))
      ).body.objects[0];
      const c = await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, { name: 'progress-dst' });
      assert.equal(c.status, 202);
      const job = await waitFor(
        async () => {
          const l = (await t.call('GET', '/jobs/?limit=0')).body.objects.find(
            (j: any) => j.operation === 'server_clone' && j.resources[1] === `/api/2.0/servers/${c.body.uuid}/`,
          );
          return l?.state === 'success' ? l : null;
        },
        20000,
        'server_clone job to succeed',
      );
      assert.deepEqual(Object.keys(job).sort(), ['children', 'created', 'data', 'last_modified', 'operation', 'resource_uri', 'resources', 'state', 'uuid']);
      assert.deepEqual(job.data, { progress: 100 });
      assert.equal(job.children.length, 1);
      assert.deepEqual(job.children[0].data, { progress: 100 });
      assert.equal(job.children[0].state, 'success');
      const parentFrames = await ws.untilEnd(job.uuid);
      assertProgressContract(
        parentFrames.map((f: any) => f.data.progress),
        'server_clone frames',
      );
      const childFrames = await ws.untilEnd(job.children[0].uuid);
      assertProgressContract(
        childFrames.map((f: any) => f.data.progress),
        'drive_clone frames',
      );
    });
  });
}
