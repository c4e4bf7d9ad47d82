import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { Bindings, compareWire, readDump, type CompareOptions } from './helpers/dumps.ts';

const GiB = 1024 ** 3;
const DUMP = 'remote_snapshots/';
/** Fields of drives newer than the dumps (see docs/decisions.md). */
const DRIVE_NEWER = ['backup_scheduler', 'iops', 'remote_snapshots', 'runtime.is_downloadable', 'runtime.is_ephemeral'];
const SPACED_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/;

for (const db of databases()) {
  describe(`remote snapshots [${db.name}]`, () => {
    let t: TestServer;
    let remoteDir: string;
    before(async () => {
      remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-remote-'));
      t = await startServer({ OPENSIGMA_REMOTE_SNAPSHOT_DIR: remoteDir }, db);
    });
    after(async () => {
      await t.close();
      fs.rmSync(remoteDir, { recursive: true, force: true });
    });

    const drive = async (body: Record<string, unknown>, call = t.call) => {
      const uuid = (await call('POST', '/drives/', { media: 'disk', size: GiB, ...body })).body.objects[0].uuid as string;
      await waitFor(async () => (await call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'drive');
      return uuid;
    };
    const image = (uuid: string) => t.running.svc.storage.find(uuid)!.path;
    const writeAt0 = (file: string, text: string) => {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from(text), 0, text.length, 0);
      fs.closeSync(fd);
    };
    const readAt0 = (file: string, n: number) => {
      const fd = fs.openSync(file, 'r');
      const b = Buffer.alloc(n);
      fs.readSync(fd, b, 0, n, 0);
      fs.closeSync(fd);
      return b.toString();
    };
    const available = (uuid: string, call = t.call) =>
      waitFor(
        async () => {
          const r = await call('GET', `/remotesnapshots/${uuid}/`);
          return r.body.status === 'available' ? r.body : null;
        },
        10000,
        'remote snapshot',
      );
    const cloned = (uuid: string, call = t.call) => waitFor(async () => (await call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, 'clone');

    test('a copy taken from a drive lives in the remote directory, outlives the drive, and clones into a drive holding the bytes of that moment', async () => {
      const d = await drive({ name: 'remote-src' });
      writeAt0(image(d), 'before');
      const c = await t.call('POST', '/remotesnapshots/', { objects: [{ drive: d, name: 'nightly', meta: { k: 'v' } }] });
      assert.equal(c.status, 201, c.text);
      const s = c.body.objects[0];
      assert.ok(['creating', 'available'].includes(s.status));
      assert.equal(s.location, 'OPENSIGMA');
      assert.deepEqual(s.drive_meta, { media: 'disk', name: 'remote-src', size: GiB, src_uuid: d, storage_type: 'dssd' });
      const done = await available(s.uuid);
      assert.equal(typeof done.allocated_size, 'number');
      assert.match(done.last_state_change, SPACED_TIME);
      // The copy is a file of its own in the remote directory, not a link to the drive's bytes.
      const copy = path.join(remoteDir, `${s.uuid}.img`);
      assert.equal(fs.statSync(copy).size, GiB);
      assert.equal(readAt0(copy, 6), 'before');
      writeAt0(image(d), 'AFTER!');
      assert.equal(readAt0(copy, 6), 'before');

      assert.deepEqual((await t.call('GET', `/drives/${d}/`)).body.remote_snapshots, [{ resource_uri: `/api/2.0/remotesnapshots/${s.uuid}/`, uuid: s.uuid }]);
      assert.deepEqual(
        (await t.call('GET', `/remotesnapshots/detail/?drive=${d}`)).body.objects.map((x: any) => x.uuid),
        [s.uuid],
      );
      assert.deepEqual(
        (await t.call('GET', '/remotesnapshots/?name=nightly')).body.objects.map((x: any) => x.uuid),
        [s.uuid],
      );
      // A local snapshot is another resource: it does not list remote ones.
      assert.equal((await t.call('GET', `/snapshots/${s.uuid}/`)).status, 404);

      const edit = await t.call('PUT', `/remotesnapshots/${s.uuid}/`, {
        ...done,
        name: 'nightly-renamed',
        meta: { k: 'w' },
        location: 'ELSEWHERE',
        allocated_size: 1,
      });
      assert.equal(edit.status, 200, edit.text);
      assert.equal(edit.body.name, 'nightly-renamed');
      assert.deepEqual(edit.body.meta, { k: 'w' });
      assert.equal(edit.body.location, 'OPENSIGMA', 'location is read-only');
      assert.equal(edit.body.allocated_size, done.allocated_size, 'allocated_size is read-only');

      // The drive goes; its remote copy stays and still clones.
      assert.equal((await t.call('DELETE', `/drives/${d}/`)).status, 204);
      await waitFor(async () => ((await t.call('GET', `/drives/${d}/`)).status === 404 ? true : null), 5000, 'drive gone');
      assert.equal((await t.call('GET', `/remotesnapshots/${s.uuid}/`)).body.status, 'available');
      const clone = await t.call('POST', `/remotesnapshots/${s.uuid}/action/?do=clone`, { name: 'restored' });
      assert.equal(clone.status, 202, clone.text);
      assert.equal(clone.body.status, 'cloning_dst');
      assert.equal(clone.body.name, 'restored');
      assert.equal(clone.body.size, GiB);
      await cloned(clone.body.uuid);
      assert.equal(readAt0(image(clone.body.uuid), 6), 'before');
      const job = (await t.call('GET', '/jobs/?limit=0')).body.objects.find((j: any) => j.resources[1] === `/api/2.0/drives/${clone.body.uuid}/`);
      assert.equal(job.resources[0], `/api/2.0/remotesnapshots/${s.uuid}/`);
      assert.equal(job.state, 'success');

      assert.equal((await t.call('DELETE', `/remotesnapshots/${s.uuid}/`)).status, 204);
      assert.equal((await t.call('GET', `/remotesnapshots/${s.uuid}/`)).status, 404);
      assert.equal(fs.existsSync(copy), false);
      assert.equal(readAt0(image(clone.body.uuid), 6), 'before', 'the clone is a drive of its own');
    });

    test('bad input changes nothing, and another account sees none of it', async () => {
      const d = await drive({ name: 'remote-bad' });
      const before = (await t.call('GET', '/remotesnapshots/?limit=0')).body.meta.total_count;
      const bad = [
        {},
        { drive: 'nope' },
        { drive: '00000000-0000-4000-8000-000000000000' },
        { drive: d, name: [] },
        { drive: d, meta: 'x' },
        { drive: d, location: [] },
        { drive: d, location: '' },
        { drive: d, tags: ['00000000-0000-4000-8000-000000000000'] },
      ];
      for (const item of bad) {
        const r = await t.call('POST', '/remotesnapshots/', { objects: [{ drive: d }, item] });
        assert.equal(r.status, 400, JSON.stringify(item));
        assert.ok(Array.isArray(r.body) && r.body[0].error_type, r.text);
      }
      assert.equal((await t.call('GET', '/remotesnapshots/?limit=0')).body.meta.total_count, before);
      assert.deepEqual(
        fs.readdirSync(remoteDir).filter((f) => f.includes(d)),
        [],
      );

      const s = (await t.call('POST', '/remotesnapshots/', { drive: d, name: 'keep' })).body.objects[0];
      await available(s.uuid);
      assert.equal((await t.call('POST', `/remotesnapshots/${s.uuid}/action/?do=explode`, {})).status, 400);
      assert.equal((await t.call('POST', `/remotesnapshots/${s.uuid}/action/`, {})).status, 400);
      assert.equal((await t.call('PUT', `/remotesnapshots/${s.uuid}/`, { meta: 5 })).status, 400);
      assert.equal(
        (await t.call('DELETE', '/remotesnapshots/', { objects: [{ uuid: s.uuid }, { uuid: '00000000-0000-4000-8000-000000000000' }] })).status,
        404,
      );
      // Regression: the bulk delete of remote snapshots took any number of objects, where every other batch stops at 100.
      const many = await t.call('DELETE', '/remotesnapshots/', { objects: Array.from({ length: 101 }, () => ({ uuid: s.uuid })) });
      assert.equal(many.status, 400);
      assert.equal(many.body[0].error_point, 'objects');
      assert.equal((await t.call('GET', `/remotesnapshots/${s.uuid}/`)).body.name, 'keep');

      await t.running.svc.store.users.create('snoop-remote@example.com', 'snoop-pw');
      const o = t.as('snoop-remote@example.com', 'snoop-pw');
      assert.equal((await o('POST', '/remotesnapshots/', { drive: d })).status, 400);
      assert.equal((await o('GET', `/remotesnapshots/${s.uuid}/`)).status, 404);
      assert.equal((await o('PUT', `/remotesnapshots/${s.uuid}/`, { name: 'x' })).status, 404);
      assert.equal((await o('DELETE', `/remotesnapshots/${s.uuid}/`)).status, 404);
      assert.equal((await o('POST', `/remotesnapshots/${s.uuid}/action/?do=clone`, {})).status, 404);
      assert.equal((await o('GET', '/remotesnapshots/?limit=0')).body.meta.total_count, 0);
      assert.equal((await t.call('GET', `/remotesnapshots/${s.uuid}/`)).body.name, 'keep');
      assert.equal((await fetch(`${t.api}/remotesnapshots/`)).status, 401);
    });

    test("CloudSigma's transcripts, field by field", async () => {
      await t.running.svc.store.users.create('transcripts-remote@example.com', 'transcripts-pw');
      const call = t.as('transcripts-remote@example.com', 'transcripts-pw');
      const b = new Bindings();
      const replay = async (name: string, opts: CompareOptions & { path?: string; body?: unknown } = {}) => {
        const req = readDump(`${DUMP}request_${name}`);
        const res = readDump(`${DUMP}response_${name}`);
        const r = await call(
          req.method,
          opts.path ?? b.apply(req.path.replace(/^\/api\/2\.0/, '')),
          opts.body ?? (req.body === undefined ? undefined : b.apply(req.body)),
        );
        assert.equal(r.status, res.status, `${name}: ${r.status} ${r.text.slice(0, 300)}`);
        if (res.body === undefined) assert.equal(r.text, '', `${name}: empty body`);
        else compareWire(r.body, res.body, { ...opts, bindings: b });
        return r;
      };
      const theirs = readDump(`${DUMP}response_snapshot_create`).body.objects[0].drive_meta;
      const d = await drive({ name: theirs.name, size: theirs.size, meta: { description: '' } }, call);
      b.bind(theirs.src_uuid, d, 'setup');
      b.bind(readDump(`${DUMP}request_snapshot_create`).body.drive, d, 'setup');
      const volatile = { free: ['timestamp', 'last_state_change', 'status', 'allocated_size'] };
      const made = await replay('snapshot_create', volatile);
      assert.equal(made.body.objects[0].allocated_size, 0);
      const s = made.body.objects[0].uuid;
      await available(s, call);
      // The dump's answer to this edit still shows the old meta; ours shows the new one.
      await replay('snapshot_edit', { free: [...volatile.free, 'meta'] });
      assert.deepEqual((await call('GET', `/remotesnapshots/${s}/`)).body.meta, { key1: 'value1' });
      await replay('snapshot_get', { path: `/remotesnapshots/${s}/`, ...volatile, free: [...volatile.free, 'name', 'meta'], shorter: ['grantees', 'tags'] });
      for (const name of ['snapshot_list', 'snapshot_list_detail'])
        await replay(name, {
          path: name.endsWith('detail') ? '/remotesnapshots/detail/' : '/remotesnapshots/',
          ...volatile,
          free: [...volatile.free, 'name', 'meta', 'owner', 'meta.total_count'],
        });
      const forDrive = await call('GET', `/remotesnapshots/detail/?drive=${d}`);
      compareWire(forDrive.body, readDump(`${DUMP}response_snapshot_list_for_drive`).body, { free: [...volatile.free, 'name', 'location', 'owner', 'meta'] });
      const second = (await call('POST', '/remotesnapshots/', { drive: d })).body.objects[0].uuid;
      await available(second, call);
      const inDrive = readDump(`${DUMP}response_snapshots_in_drive_def`).body;
      compareWire((await call('GET', `/drives/${d}/`)).body.remote_snapshots, inDrive.remote_snapshots);
      const clone = await replay('snapshot_clone', {
        path: `/remotesnapshots/${s}/action/?do=clone&avoid=${d}`,
        extras: DRIVE_NEWER,
        // the dump answers resource_uri as an object (digest §1.5), is_snapshotable null, and comes from a run with a 1 GiB drive
        free: ['resource_uri', 'runtime.is_snapshotable', 'jobs', 'size'],
        shorter: ['tags'],
      });
      await cloned(clone.body.uuid, call);
      b.bind('f69d43df-092d-4fef-9766-668cb6469f31', second, 'setup');
      await replay('snapshot_delete');
      assert.deepEqual((await call('GET', '/remotesnapshots/schema/')).body, readDump(`${DUMP}response_snapshot_schema`).body);
    });
  });
}
