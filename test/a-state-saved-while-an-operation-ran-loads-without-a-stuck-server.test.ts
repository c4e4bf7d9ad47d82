import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { loadState, saveState } from '../src/store/states.ts';
import { statePlaces } from '../src/cli/state.ts';

// A state saved in the instant between a server's status change and its operation's end holds that operation as
// still running under its agent. Loaded, nobody ran it, and reconciliation skipped the server as busy for good:
// it showed `running` with no guest behind it (a CI run caught this on PostgreSQL).
for (const db of databases()) {
  describe(`a state saved while an operation ran [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    for (const claimant of ['an agent that is gone', 'the agent serving now']) {
      test(`claimed by ${claimant}: once loaded, the server is reconciled to what really runs`, async () => {
        const store = t.running.svc.store;
        const places = statePlaces(t.config);
        const uuid = (await t.call('POST', '/servers/', { objects: [minimalServer('in-flight')] })).body.objects[0].uuid;
        assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
        await waitForStatus(t, uuid, 'running');
        const op = await store.db.selectFrom('operations').selectAll().where('server_uuid', '=', uuid).where('kind', '=', 'start').executeTakeFirstOrThrow();
        assert.equal(op.state, 'done');
        // The row as a save in that instant finds it.
        const agent = claimant === 'an agent that is gone' ? 'gone-agent' : op.claimed_by;
        await store.db.updateTable('operations').set({ state: 'running', claimed_by: agent }).where('id', '=', op.id).execute();
        const name = claimant === 'an agent that is gone' ? 'gone' : 'serving';
        await saveState(store, places, name);
        await store.db.updateTable('operations').set({ state: 'done', claimed_by: op.claimed_by }).where('id', '=', op.id).execute();

        assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
        await waitForStatus(t, uuid, 'stopped');
        await loadState(store, places, name);
        assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'running', 'the load gives back the saved status');
        // No guest runs it: reconciliation (every second here) stops it, however the operation was held.
        await waitForStatus(t, uuid, 'stopped');
        const after = await store.db.selectFrom('operations').select('state').where('id', '=', op.id).executeTakeFirstOrThrow();
        assert.notEqual(after.state, 'running', 'the restored operation stays running with nobody running it');
        // And the server is the user's again: it starts.
        assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
        await waitForStatus(t, uuid, 'running');
      });
    }
  });
}
