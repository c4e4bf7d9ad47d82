import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ADMIN, databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { otherUser, readyDrive, waitForDrive } from './helpers/drives.ts';
import { deleteState, listStates, loadState, resetState, saveState } from '../src/store/states.ts';
import { statePlaces } from '../src/cli/state.ts';
import { cli } from './helpers/cli-process.ts';

const basic = () => `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

async function upload(t: TestServer, data: Buffer): Promise<string> {
  const res = await fetch(`${t.api}/drives/upload/`, {
    method: 'POST',
    headers: { authorization: basic(), 'content-type': 'application/octet-stream' },
    body: data as unknown as BodyInit,
  });
  const uuid = (await res.text()).trim();
  assert.equal(res.status, 201, uuid);
  await waitForDrive(t, uuid, 'unmounted');
  return uuid;
}

async function download(t: TestServer, uuid: string, length: number): Promise<Buffer> {
  const res = await fetch(`${t.api}/drives/${uuid}/download/`, { headers: { authorization: basic(), range: `bytes=0-${length - 1}` } });
  return Buffer.from(await res.arrayBuffer());
}

const byUuid = (a: any[]) => [...a].sort((x, y) => String(x.uuid).localeCompare(String(y.uuid)));

async function everything(t: TestServer) {
  const servers = await t.call('GET', '/servers/detail/?limit=0');
  const drives = await t.call('GET', '/drives/detail/?limit=0');
  return { servers: byUuid(servers.body.objects), drives: byUuid(drives.body.objects) };
}

for (const db of databases()) {
  describe(`saved states [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('a load while serving gives back exactly the saved servers, drives and bytes, on the very next GET', async () => {
      const places = statePlaces(t.config);
      const store = t.running.svc.store;
      const bytes = crypto.randomBytes(256 * 1024);
      const uploaded = await upload(t, bytes);
      const kept = await readyDrive(t, { name: 'kept' });
      const s = await t.call('POST', '/servers/', {
        objects: [minimalServer('saved-one', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: kept.uuid }] })],
      });
      assert.equal(s.status, 201, s.text);
      const server = s.body.objects[0].uuid;
      const saved = await everything(t);
      assert.equal(saved.servers.length, 1);
      assert.equal(saved.drives.length, 2);

      await saveState(store, places, 'base');

      // Changes after the save: a server edited (and its answer cached), another created, a drive deleted, new bytes.
      const edited = await t.call('PUT', `/servers/${server}/`, { ...minimalServer('renamed'), drives: [] });
      assert.equal(edited.status, 200, edited.text);
      assert.equal((await t.call('GET', `/servers/${server}/`)).body.name, 'renamed');
      assert.equal((await t.call('POST', '/servers/', { objects: [minimalServer('after')] })).status, 201);
      assert.equal((await t.call('DELETE', `/drives/${uploaded}/`)).status, 204);
      await upload(t, crypto.randomBytes(4096));
      assert.notDeepEqual(await everything(t), saved);

      await loadState(store, places, 'base');
      const one = await t.call('GET', `/servers/${server}/`);
      assert.equal(one.body.name, 'saved-one', 'the wire cache answered from before the load');
      const restored = await everything(t);
      assert.deepEqual(restored, saved);
      assert.ok((await download(t, uploaded, bytes.length)).equals(bytes), 'restored drive bytes differ');
    });

    test('list and delete; a missing or badly named state is refused', async () => {
      const places = statePlaces(t.config);
      await saveState(t.running.svc.store, places, 'second');
      assert.deepEqual(
        listStates(places).map((s) => s.name),
        ['base', 'second'],
      );
      await deleteState(places, 'second');
      assert.deepEqual(
        listStates(places).map((s) => s.name),
        ['base'],
      );
      await assert.rejects(deleteState(places, 'second'), /no saved state named second/);
      await assert.rejects(loadState(t.running.svc.store, places, 'nope'), /no saved state/);
      await assert.rejects(saveState(t.running.svc.store, places, '../x'), /a state's name/);
    });

    test('reset leaves an empty account that still logs in', async () => {
      await resetState(t.running.svc.store, statePlaces(t.config));
      const after = await everything(t);
      assert.deepEqual(after, { servers: [], drives: [] });
      assert.equal((await t.call('GET', '/servers/')).status, 200);
      assert.equal((await t.call('POST', '/servers/', { objects: [minimalServer('fresh')] })).status, 201);
    });

    test('over HTTP the administrator saves, lists, loads, deletes and resets; others are refused', async () => {
      const other = await otherUser(t);
      const anon = await fetch(`${t.api}/opensigma/state/`);
      assert.equal(anon.status, 401);
      for (const [m, p] of [
        ['GET', '/opensigma/state/'],
        ['POST', '/opensigma/state/x/action/?do=save'],
        ['DELETE', '/opensigma/state/base/'],
        ['POST', '/opensigma/state/action/?do=reset'],
      ]) {
        const r = await other(m!, p!);
        assert.equal(r.status, 403, `${m} ${p}`);
        assert.equal(r.body[0].error_type, 'permission');
      }
      assert.deepEqual(
        listStates(statePlaces(t.config)).map((s) => s.name),
        ['base'],
        'a refused call changed something',
      );
      const made = await t.call('POST', '/servers/', { objects: [minimalServer('over-http')] });
      const saved = await t.call('POST', '/opensigma/state/web/action/?do=save');
      assert.equal(saved.status, 200, saved.text);
      assert.equal(saved.body.name, 'web');
      const list = await t.call('GET', '/opensigma/state/');
      assert.deepEqual(
        list.body.objects.map((s: any) => s.name),
        ['base', 'web'],
      );
      assert.equal((await t.call('POST', '/opensigma/state/action/?do=reset')).status, 200);
      assert.equal((await t.call('GET', '/servers/')).body.objects.length, 0);
      assert.equal((await t.call('POST', '/opensigma/state/web/action/?do=load')).status, 200);
      assert.ok((await t.call('GET', '/servers/')).body.objects.some((o: any) => o.uuid === made.body.objects[0].uuid));
      assert.equal((await other('GET', '/servers/')).status, 200, 'the other user logs in after the load');
      const missing = await t.call('POST', '/opensigma/state/nope/action/?do=load');
      assert.equal(missing.status, 404);
      assert.equal(missing.body[0].error_type, 'notexist');
      assert.equal((await t.call('POST', '/opensigma/state/web/action/?do=explode')).status, 400);
      assert.equal((await t.call('POST', '/opensigma/state/bad%20name/action/?do=save')).status, 400);
      assert.equal((await t.call('DELETE', '/opensigma/state/web/')).status, 204);
      assert.equal((await t.call('DELETE', '/opensigma/state/web/')).status, 404);
    });

    test('the compute side reconciles: running without a guest becomes stopped, a guest the state shows stopped is powered off', async () => {
      const places = statePlaces(t.config);
      const store = t.running.svc.store;
      const uuid = (await t.call('POST', '/servers/', { objects: [minimalServer('lives')] })).body.objects[0].uuid;
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitForStatus(t, uuid, 'running');
      await saveState(store, places, 'running');
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
      await waitForStatus(t, uuid, 'stopped');
      await saveState(store, places, 'stopped');
      await loadState(store, places, 'running');
      await waitForStatus(t, uuid, 'stopped');
      assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
      await waitForStatus(t, uuid, 'running');
      await loadState(store, places, 'stopped');
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'stopped');
      const guests = async () =>
        (await t.running.svc.compute!.hosts.values().next().value!.guests()).filter((g: any) => g.uuid === uuid && g.state === 'running');
      await waitForStatus(t, uuid, 'stopped');
      const deadline = Date.now() + 10000;
      while ((await guests()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await guests(), [], 'the orphan guest still runs');
    });

    test('the opensigma state commands, as a process beside the serving one', async () => {
      const uuid = (await t.call('POST', '/servers/', { objects: [minimalServer('from-cli')] })).body.objects[0].uuid;
      assert.match(await cli(t, 'state', 'save', 'cli'), /saved cli: \d+ rows/);
      assert.equal((await t.call('PUT', `/servers/${uuid}/`, minimalServer('changed'))).status, 200);
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.name, 'changed');
      assert.match(await cli(t, 'state', 'load', 'cli'), /loaded cli/);
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.name, 'from-cli');
      assert.match(await cli(t, 'state', 'list'), /^cli\t/m);
      await assert.rejects(cli(t, 'state', 'load', 'absent'), (e: any) => e.code === 1 && /no saved state named absent/.test(e.stderr));
      assert.match(await cli(t, 'state', 'delete', 'cli'), /deleted cli/);
      assert.match(await cli(t, 'state', 'reset'), /users kept/);
      assert.equal((await t.call('GET', '/servers/')).body.objects.length, 0);
    });
  });
}
