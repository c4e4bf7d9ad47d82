import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

const GiB = 1024 ** 3;

for (const db of databases()) {
  describe(`jobs [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    async function disk(name: string) {
      const d = await t.call('POST', '/drives/', { name, size: GiB, media: 'disk' });
      assert.equal(d.status, 201);
      const uuid = d.body.objects[0].uuid;
      await waitFor(async () => (await t.call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid;
    }

    test('server clone records a server_clone job with drive_clone children, listed newest first', async () => {
      const d = await disk('job-disk');
      const s = (await t.call('POST', '/servers/', minimalServer('job-src', { drives: [{ drive: d, device: 'virtio', dev_channel: '0:0', boot_order: 1 }] })))
        .body.objects[0];
      const c = await t.call('POST', `/servers/${s.uuid}/action/?do=clone`, { name: 'job-dst' });
      assert.equal(c.status, 202);
      // the copy runs after the answer; the job ends with it
      const list = (await waitFor(
        async () => {
          const l = await t.call('GET', '/jobs/?limit=0');
          assert.equal(l.status, 200);
          return l.body.objects.find((j: any) => j.operation === 'server_clone')?.state === 'success' ? l : null;
        },
        10000,
        'server_clone job to succeed',
      ))!;
      const job = list.body.objects.find((j: any) => j.operation === 'server_clone');
      assert.deepEqual(job.resources, [`/api/2.0/servers/${s.uuid}/`, `/api/2.0/servers/${c.body.uuid}/`]);
      assert.equal(job.state, 'success');
      assert.deepEqual(job.data, { progress: 100 });
      assert.match(job.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      assert.equal(job.resource_uri, `/api/2.0/jobs/${job.uuid}/`);
      assert.equal(job.children.length, 1);
      const child = job.children[0];
      assert.equal(child.operation, 'drive_clone');
      assert.equal(child.resources[0], `/api/2.0/drives/${d}/`);
      assert.equal(child.resources[1], `/api/2.0/drives/${c.body.drives[0].drive.uuid}/`);
      assert.deepEqual(child.children, []);
      const one = await t.call('GET', `/jobs/${job.uuid}/`);
      assert.deepEqual(one.body, job);
      const started = await t.call('GET', '/jobs/?state=started');
      assert.equal(started.body.objects.length, 0);
      const success = await t.call('GET', '/jobs/?state=success&limit=0');
      assert.ok(success.body.objects.length >= 2);
      // newest change first
      const times = list.body.objects.map((j: any) => j.last_modified);
      assert.deepEqual([...times].sort().reverse(), times);
    });

    test('unknown and expired jobs answer 404; another account cannot read mine', async () => {
      const missing = await t.call('GET', '/jobs/00000000-0000-4000-8000-000000000000/');
      assert.equal(missing.status, 404);
      assert.equal(missing.body[0].error_type, 'notexist');
      const svc = t.running.svc;
      const me = (await svc.store.users.byEmail('admin@example.com'))!.uuid;
      const uuid = await svc.jobs.start({ owner: me, operation: 'drive_clone', resources: [] });
      assert.equal((await t.call('GET', `/jobs/${uuid}/`)).status, 200);
      await svc.store.users.create('other-jobs@example.com', 'pw-other-jobs');
      const other = t.as('other-jobs@example.com', 'pw-other-jobs');
      assert.equal((await other('GET', `/jobs/${uuid}/`)).status, 404);
      assert.equal((await other('GET', '/jobs/')).body.meta.total_count, 0);
      // three days later it is gone
      await svc.store.jobs.setColumns(uuid, { created_at: new Date(Date.now() - 3 * 24 * 3600 * 1000 - 1000).toISOString() });
      assert.equal((await t.call('GET', `/jobs/${uuid}/`)).status, 404);
      const all = await t.call('GET', '/jobs/?limit=0');
      assert.ok(!all.body.objects.some((j: any) => j.uuid === uuid));
    });

    test('a running job shows on the resources it works on', async () => {
      const d = await disk('job-running');
      const svc = t.running.svc;
      const me = (await svc.store.users.byEmail('admin@example.com'))!.uuid;
      const uuid = await svc.jobs.start({ owner: me, operation: 'drive_clone', resources: [['drives', d]] });
      await svc.jobs.progress(uuid, 40);
      const shown = await t.call('GET', `/drives/${d}/`);
      assert.deepEqual(shown.body.jobs, [{ resource_uri: `/api/2.0/jobs/${uuid}/`, uuid }]);
      assert.deepEqual((await t.call('GET', `/jobs/${uuid}/`)).body.data, { progress: 40 });
      await svc.jobs.finish(uuid);
      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.jobs, []);
    });
  });
}
