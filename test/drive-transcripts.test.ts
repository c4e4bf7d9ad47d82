import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databases, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { Bindings, compareWire, FIXTURES, readDump, type CompareOptions } from './helpers/dumps.ts';
import { setCloneNaming } from './helpers/drives.ts';

type Call = TestServer['call'];

/**
 * The drive resource emits the 2025 shape (response_drive_storage_type), a superset of older dumps: these keys are
 * ours where a dump predates them. Jobs lists are the jobs resource's: ours may be shorter.
 */
const NEWER = ['backup_scheduler', 'iops', 'remote_snapshots', 'runtime.is_downloadable', 'runtime.is_ephemeral'];
const DRIVE: CompareOptions = { extras: NEWER, shorter: ['jobs'] };
/** Dumps of zadara-era accounts lack grantees/permissions too. */
const OLD_DRIVE: CompareOptions = { extras: [...NEWER, 'grantees', 'permissions'], shorter: ['jobs'] };
/**
 * runtime.is_snapshotable of a drive still being created or cloned: null in the 2014 dumps, true in the 2025 one and
 * in drive_clone. Ours follows the 2025 shape (true unless ephemeral).
 */
const CREATING: CompareOptions = { ...DRIVE, free: ['runtime.is_snapshotable'] };
const CLONE = CREATING;

/** Replays a dump's request (with our ids) and compares our answer with its response field by field. */
async function replay(call: Call, name: string, b: Bindings, opts: CompareOptions = {}, body?: unknown) {
  const req = body === undefined ? readDump(`request_${name}`) : requestLine(name);
  const res = readDump(`response_${name}`);
  const p = b.apply(req.path).replace(/^\/api\/2\.0/, '');
  const r = await call(req.method, p, body ?? (req.body === undefined ? undefined : b.apply(req.body)));
  assert.equal(r.status, res.status, `${name}: answered ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.headers.get('content-type'), res.headers['content-type'], `${name}: content-type`);
  if (res.body === undefined) {
    assert.equal(r.text, '', `${name}: body should be empty`);
    return r;
  }
  let theirs = res.body;
  if (Array.isArray(theirs?.objects) && Array.isArray(r.body?.objects) && theirs.objects.length > 1) {
    // A list's order is the database's: put the dump's items in the order of the drives they stand for.
    const order = new Map(r.body.objects.map((o: any, i: number) => [o.uuid, i]));
    const rank = (o: any) => order.get(b.map.get(o.uuid) ?? o.uuid) ?? 1e9;
    theirs = { ...theirs, objects: [...theirs.objects].sort((x: any, y: any) => Number(rank(x)) - Number(rank(y))) };
  }
  try {
    compareWire(r.body, theirs, { ...opts, bindings: b });
  } catch (e) {
    (e as Error).message = `${name}: ${(e as Error).message}`;
    throw e;
  }
  return r;
}

/** The method and path of a dump whose body is not JSON. */
function requestLine(name: string) {
  const [method, p] = fs.readFileSync(path.join(FIXTURES, `request_${name}`), 'utf8').split(' ');
  return { method: method!, path: p!, body: undefined };
}

async function freshUser(t: TestServer, tag: string): Promise<Call> {
  const email = `${tag}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  await t.running.svc.store.users.create(email, 'password-1');
  return t.as(email, 'password-1');
}

async function ready(call: Call, uuid: string): Promise<void> {
  await waitFor(async () => (await call('GET', `/drives/${uuid}/`)).body.status === 'unmounted', 10000, `drive ${uuid}`);
}

/** Makes a drive of ours stand for the dump's `dumpUuid`. */
async function drive(call: Call, b: Bindings, dumpUuid: string, body: Record<string, unknown>): Promise<string> {
  const r = await call('POST', '/drives/', { objects: [body] });
  assert.equal(r.status, 201, r.text);
  const uuid = r.body.objects[0].uuid;
  b.bind(dumpUuid, uuid, 'setup');
  await ready(call, uuid);
  return uuid;
}

/** The dumps' library drives as an operator's library folder: descriptions plus (sparse) images of their sizes. */
function dumpLibrary(dir: string): string[] {
  // libdrive_get shows the licenses of c7105ec8 in another order than the list: the get is the reference
  const get = readDump('response_libdrive_get').body;
  const objs = readDump('response_libdrive_list').body.objects.map((o: any) => (o.uuid === get.uuid ? get : o));
  if (!objs.some((o: any) => o.uuid === get.uuid)) objs.push(get);
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  const descriptions = objs.map((o: any) => {
    const image = path.join(dir, 'images', `${o.uuid}.raw`);
    fs.closeSync(fs.openSync(image, 'w'));
    fs.truncateSync(image, o.size);
    const { owner: _o, resource_uri: _r, status: _s, storage_type: _st, jobs: _j, mounted_on: _m, tags: _t, meta: _me, ...rest } = o;
    return { ...rest, image: `images/${o.uuid}.raw` };
  });
  fs.writeFileSync(path.join(dir, 'dump-library.json'), JSON.stringify(descriptions, null, 2));
  return objs.map((o: any) => o.uuid);
}

for (const db of databases()) {
  describe(`drive transcripts [${db.name}]`, () => {
    let t: TestServer;
    let libDir: string;
    let libUuids: string[];
    before(async () => {
      libDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-library-'));
      libUuids = dumpLibrary(libDir);
      t = await startServer({ OPENSIGMA_LIBRARY_DIR: libDir }, db);
    });
    after(async () => {
      await t.close();
      fs.rmSync(libDir, { recursive: true, force: true });
    });

    test('create minimal, get unmounted, update meta, delete', async () => {
      const call = await freshUser(t, 'minimal');
      const b = new Bindings();
      const c = await replay(call, 'drive_create_minimal', b, CREATING);
      await ready(call, c.body.objects[0].uuid);
      await replay(call, 'drive_get_unmounted', b, DRIVE);
      await replay(call, 'drive_update_meta', b, DRIVE);
      await replay(call, 'drive_delete', b);
      assert.equal((await call('GET', `/drives/${c.body.objects[0].uuid}/`)).status, 404);
    });

    test('create bulk, then the short list, the detail list and the uuid,status list', async () => {
      const call = await freshUser(t, 'bulk');
      const b = new Bindings();
      // two drives of the listing come from another run than the bulk create
      const detail = readDump('response_drive_list_detail').body.objects;
      for (const o of detail.filter((x: any) => !x.name.startsWith('test_drive_')))
        await drive(call, b, o.uuid, { name: o.name, media: o.media, size: o.size, meta: o.meta });
      const c = await replay(call, 'drive_create_bulk', b, CREATING);
      for (const d of c.body.objects) await ready(call, d.uuid);
      await replay(call, 'drive_list', b);
      await replay(call, 'drive_list_detail', b, DRIVE);
      await replay(call, 'drive_list_just_uuid_and_status', b);
    });

    test('storage types: nvme (2025 shape) and zadara', async () => {
      const call = await freshUser(t, 'storage');
      const b = new Bindings();
      // The dump's request is not valid JSON (a missing bracket): send what it meant.
      const body = { objects: [{ media: 'disk', name: 'test_nvme_drive', size: 1073741824, storage_type: 'nvme', meta: { description: '' } }] };
      await replay(call, 'drive_storage_type', b, {}, body);
      await replay(call, 'drive_create_zadara', b, { ...OLD_DRIVE, free: CREATING.free });
    });

    test('edit, resize by PUT (old size while resizing), resize action', async () => {
      const call = await freshUser(t, 'edit');
      const b = new Bindings();
      await drive(call, b, '86468a1e-d622-4080-bb6d-8ec7b635db48', { name: 'test_drive_x', media: 'disk', size: 1073741824 });
      await replay(call, 'drive_edit', b, DRIVE);
      await drive(call, b, '4dc73d5d-29de-427b-a984-cde253c14ed6', { name: 'test_drive_1', media: 'disk', size: 2147483648 });
      await replay(call, 'drive_resize', b, DRIVE);
      await drive(call, b, 'df170528-c34d-4009-a806-c7d85c78cad8', { name: 'test_drive_1', media: 'disk', size: 2147483648 });
      await replay(call, 'drive_resize_action', b, DRIVE);
    });

    test('clone: size rounded up, between storage types, and every clone naming strategy', async () => {
      const call = await freshUser(t, 'clone');
      const b = new Bindings();
      await drive(call, b, '5d537d3f-22ea-4967-9ec0-32e837a8b390', { name: 'test_drive_x', media: 'disk', size: 1073741824 });
      await replay(call, 'drive_clone', b, CLONE);
      await drive(call, b, '3be001aa-16df-453a-a2ab-d13981d56589', { name: 'test_zadara_drive_for_clone', media: 'disk', size: 1073741824 });
      await replay(call, 'drive_clone_dssd_zadara', b, { ...OLD_DRIVE, free: CLONE.free });
      await drive(call, b, '1c17d5ad-d345-4af1-9fc8-89dec02f0daf', { name: 'test_zadara_drive', media: 'disk', size: 1073741824, storage_type: 'zadara' });
      await replay(call, 'drive_clone_zadara_zadara', b, { ...OLD_DRIVE, free: CLONE.free });

      // clone naming is the admin's profile: run these as the admin
      const nb = new Bindings();
      await drive(t.call, nb, '1455c968-3477-4504-a93d-d0a7dc961f00', { name: 'test_drive_x', media: 'disk', size: 1073741824 });
      const today = new Date().toISOString().slice(0, 10);
      for (const [strategy, dump] of [
        ['COUNTER', 'counter'],
        ['DATE', 'date'],
        ['TIMESTAMP', 'timestamp'],
        ['NONE', 'none'],
      ] as const) {
        await setCloneNaming(t, strategy);
        const r = await replay(t.call, `drive_clone_naming_${dump}`, nb, { ...CLONE, free: [...CLONE.free!, 'name'] });
        const name = r.body.objects[0].name;
        if (strategy === 'COUNTER') assert.equal(name, 'test_drive_x_1');
        if (strategy === 'NONE') assert.equal(name, 'test_drive_x');
        if (strategy === 'DATE') assert.equal(name, `test_drive_x-${today}`);
        if (strategy === 'TIMESTAMP') assert.match(name, new RegExp(`^test_drive_x-${today} \\d\\d:\\d\\d:\\d\\d$`));
        await ready(t.call, r.body.objects[0].uuid);
      }
      await setCloneNaming(t, 'NONE');
    });

    test('schemas', async () => {
      const b = new Bindings();
      await replay(t.call, 'drive_schema', b);
      await replay(t.call, 'libdrive_schema', b);
    });

    test('library drives: get, get through /drives/, and a list page', async () => {
      const b = new Bindings();
      await replay(t.call, 'libdrive_get', b);
      await replay(t.call, 'librdrive_get_through_drives', b, DRIVE);
      // Our library is not CloudSigma's 158 images: list the dump's five by uuid, in their order.
      const list = readDump('response_libdrive_list').body;
      const r = await t.call('GET', `/libdrives/?limit=5&uuid=${libUuids.slice(0, 5).join(',')}`);
      assert.equal(r.status, 200);
      compareWire(r.body, list, { bindings: b, free: ['meta.total_count', 'licenses'] });
      assert.equal(r.body.meta.total_count, 5);
    });
  });
}
