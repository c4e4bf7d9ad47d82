import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_STATUSES, EVENTS, STATUSES, allows, next, refusalMessage, type ServerEvent } from '../src/domain/server-lifecycle.ts';

const events = Object.keys(EVENTS) as ServerEvent[];

test('every status is reachable from stopped through the table', () => {
  const seen = new Set<string>(['stopped']);
  for (let grew = true; grew;) {
    grew = false;
    for (const s of [...seen])
      for (const e of events) {
        const n = next(e, s);
        if (n && !seen.has(n)) {
          seen.add(n);
          grew = true;
        }
      }
  }
  // paused is CloudSigma's and shown by the schema, but nothing here pauses a guest
  assert.deepEqual([...seen].sort(), ALL_STATUSES.filter((s) => s !== 'paused').sort());
});

test('no event leaves a server transitional for ever: each transitional status has a way out that no user action is needed for', () => {
  for (const s of ALL_STATUSES.filter((x) => STATUSES[x].transitional)) {
    const outs = events.filter((e) => EVENTS[e].source !== 'api' && allows(e, s)).map((e) => next(e, s)!);
    assert.ok(
      outs.some((n) => !STATUSES[n].transitional),
      `${s} has no driver, reconciliation or timeout event leading out of it`,
    );
    // and a hard stop always applies, so a user can end it too
    assert.ok(allows('stop', s), `stop does not apply to ${s}`);
  }
});

test('a status that holds capacity is one the agent tends, so it is never left holding capacity unreconciled', () => {
  for (const s of ALL_STATUSES) if (STATUSES[s].holdsCapacity) assert.ok(STATUSES[s].tended, s);
  for (const s of ALL_STATUSES) if (STATUSES[s].onHost) assert.ok(STATUSES[s].holdsCapacity, s);
});

test('events that leave a host lead to a status that does not hold capacity', () => {
  for (const e of events) {
    const r = EVENTS[e] as { to?: string; leavesHost?: boolean };
    if (r.leavesHost) assert.equal(STATUSES[r.to as keyof typeof STATUSES].holdsCapacity, false, e);
  }
});

test('refusals are worded as CloudSigma words them', () => {
  assert.equal(refusalMessage('start', 'running'), 'Cannot start guest in state "started". Guest should be in state "stopped"');
  assert.equal(refusalMessage('stop', 'stopped'), `Cannot stop guest in state "stopped". Guest should be in state "['started', 'running_legacy']"`);
  assert.equal(refusalMessage('shutdown', 'starting'), `Cannot shutdown guest in state "starting". Guest should be in state "['started', 'running_legacy']"`);
  assert.equal(
    refusalMessage('restart', 'unavailable'),
    `Cannot restart guest in state "unavailable". Guest should be in state "['started', 'running_legacy']"`,
  );
  assert.equal(refusalMessage('clone', 'starting'), 'Cannot clone guest in state "starting". Guest should be in state "stopped"');
  assert.equal(refusalMessage('delete', 'running'), 'Cannot delete server in state "running". Server should be in state "stopped"');
});

test('API events refuse every status they do not list, and only those', () => {
  const api = events.filter((e) => EVENTS[e].source === 'api');
  for (const e of api) for (const s of ALL_STATUSES) assert.equal(next(e, s) !== null, (EVENTS[e].from as readonly string[]).includes(s), `${e} from ${s}`);
});
