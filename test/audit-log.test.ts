import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  describe(`audit log [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    const entries = async (uuid: string) => (await t.call('GET', `/logs/?limit=0&uuid=${uuid}`)).body.objects;

    test('create, start (start_send, boot), stop (stop_send, stop), update, delete of a server are logged newest first', async () => {
      const me = (await t.call('GET', '/profile/')).body.uuid;
      const s = (await t.call('POST', '/servers/', minimalServer('audited'))).body.objects[0];
      const first = (await t.call('GET', '/logs/?limit=1')).body;
      assert.equal(first.meta.limit, 1);
      assert.deepEqual(first.objects[0], {
        action: 'create',
        actor: { resource_uri: `/api/2.0/user/${me}/`, uuid: me },
        category: 'Servers',
        details: '',
        error_message: '',
        error_point: null,
        error_type: null,
        success: true,
        timestamp: first.objects[0].timestamp,
        uuid: s.uuid,
      });
      assert.match(first.objects[0].timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      await t.call('PUT', `/servers/${s.uuid}/`, { ...minimalServer('audited-2') });
      await t.call('DELETE', `/servers/${s.uuid}/`);
      const log = await waitFor(
        async () => {
          const l = await entries(s.uuid);
          return l.some((x: any) => x.action === 'delete') ? l : null;
        },
        5000,
        'delete logged',
      );
      const actions = log.map((x: any) => x.action).reverse();
      assert.deepEqual(actions, ['create', 'start_send', 'boot', 'stop_send', 'stop', 'update', 'delete']);
      const stamps = log.map((x: any) => x.timestamp);
      assert.deepEqual([...stamps].sort().reverse(), stamps);
    });

    test("a change a grantee makes to a shared server is attributed to the grantee in the owner's log", async () => {
      await t.running.svc.store.users.create('grantee-audit@example.com', 'grantee-audit-pw');
      const grantee = t.as('grantee-audit@example.com', 'grantee-audit-pw');
      const granteeUuid = (await grantee('GET', '/profile/')).body.uuid;
      const owner = (await t.call('GET', '/profile/')).body.uuid;
      const tag = (await t.call('POST', '/tags/', { name: 'shared-audit' })).body.objects[0];
      const s = (await t.call('POST', '/servers/', { ...minimalServer('shared-audited'), tags: [tag.uuid] })).body.objects[0];
      await t.call('POST', '/acls/', {
        name: 'audit',
        grantees: [{ uuid: granteeUuid }],
        rules: [{ permission: 'LIST' }, { permission: 'START' }],
        tags: [tag.uuid],
      });
      assert.equal((await grantee('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
      const log = await waitFor(
        async () => {
          const l = await entries(s.uuid);
          return l.some((x: any) => x.action === 'start_send') ? l : null;
        },
        5000,
        'start logged',
      );
      assert.equal(log.find((x: any) => x.action === 'start_send').actor.uuid, granteeUuid);
      assert.equal(log.find((x: any) => x.action === 'create').actor.uuid, owner);
      assert.equal((await grantee('GET', '/logs/')).body.meta.total_count, 0);
    });

    test('a refused change is logged as unsuccessful with the error the client got; an unknown id is not', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('refused-audit'))).body.objects[0];
      const stop = await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      assert.equal(stop.status, 403);
      const bad = await t.call('PUT', `/servers/${s.uuid}/`, { ...minimalServer('refused-audit'), cpu: 'lots' });
      assert.equal(bad.status, 400);
      assert.equal((await t.call('POST', '/servers/00000000-0000-0000-0000-000000000000/action/?do=start')).status, 404);
      const log = await waitFor(
        async () => {
          const l = await entries(s.uuid);
          return l.filter((x: any) => !x.success).length >= 2 ? l : null;
        },
        5000,
        'refusals logged',
      );
      const refusedStop = log.find((x: any) => x.action === 'stop_send');
      assert.deepEqual(
        {
          success: refusedStop.success,
          error_message: refusedStop.error_message,
          error_point: refusedStop.error_point,
          error_type: refusedStop.error_type,
          category: refusedStop.category,
        },
        { success: false, error_message: stop.body[0].error_message, error_point: stop.body[0].error_point, error_type: 'permission', category: 'Servers' },
      );
      const refusedEdit = log.find((x: any) => x.action === 'update' && !x.success);
      assert.equal(refusedEdit.error_type, 'validation');
      assert.equal(refusedEdit.error_point, bad.body[0].error_point);
      assert.equal((await entries('00000000-0000-0000-0000-000000000000')).length, 0);
      // the refused edit changed nothing, and the log has no successful update for it
      assert.equal(log.filter((x: any) => x.action === 'update' && x.success).length, 0);
    });

    test('a change is in the log by the time its request is answered (read your own writes)', async () => {
      for (let i = 0; i < 5; i++) {
        const s = (await t.call('POST', '/servers/', minimalServer(`answered-${i}`))).body.objects[0];
        // by uuid: servers of the other tests still report their boots meanwhile
        assert.equal((await t.call('GET', `/logs/?limit=1&uuid=${s.uuid}`)).body.objects[0]?.action, 'create');
        assert.equal((await t.call('POST', `/servers/${s.uuid}/action/?do=stop`)).status, 403);
        const newest = (await t.call('GET', `/logs/?limit=1&uuid=${s.uuid}`)).body.objects[0];
        assert.deepEqual([newest.uuid, newest.action, newest.success], [s.uuid, 'stop_send', false]);
      }
    });

    test('changes to other resources are logged under their category; another account sees only its own log', async () => {
      const tag = (await t.call('POST', '/tags/', { name: 'logged' })).body.objects[0];
      await t.call('PUT', '/profile/', { company: 'x' });
      const tagLog = await waitFor(async () => ((await entries(tag.uuid)).length ? await entries(tag.uuid) : null), 5000, 'tag logged');
      assert.equal(tagLog[0].category, 'Tags');
      assert.equal(tagLog[0].action, 'create');
      const cats = (await t.call('GET', '/logs/?limit=0&category=Profile')).body.objects;
      assert.ok(cats.some((x: any) => x.action === 'update'));
      await t.running.svc.store.users.create('other-audit@example.com', 'other-audit-pw');
      const other = t.as('other-audit@example.com', 'other-audit-pw');
      assert.equal((await other('GET', '/logs/')).body.meta.total_count, 0);
      assert.equal((await t.call('GET', '/logs/schema/')).body.allowed_list_http_methods[0], 'get');
      assert.equal((await t.call('GET', '/logs/?limit=x')).status, 400);
    });
  });
}
