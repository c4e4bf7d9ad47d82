import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { emptyRule, fromRules, placePolicyErrors, toRules, withPolicy } from '../web/src/firewall.ts';
import { profileChanges, subscriptionBody } from '../web/src/account.ts';
import { startServer, type TestServer } from './helpers/harness.ts';

/** The logic behind the web console's firewall, subscription and profile forms, against the real API's answers. */
describe('web console: firewall, subscription and profile forms', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(async () => t?.close());

  test('a rule left blank is "any" (null) and the rest goes as typed; what the API stores comes back as the form shows it', async () => {
    const rules = [
      { ...emptyRule(), dst_port: ' 22 ', src_ip: '23' },
      { ...emptyRule(), action: 'drop', ip_proto: '' },
    ];
    const body = toRules(rules);
    assert.deepEqual(body[1], { action: 'drop', direction: 'in', ip_proto: null, src_ip: null, src_port: null, dst_ip: null, dst_port: null, comment: null });
    const r = await t.call('POST', '/fwpolicies/', { name: 'p', rules: body });
    assert.equal(r.status, 201, r.text);
    const back = fromRules(r.body.objects[0].rules);
    assert.deepEqual(back[0], { ...emptyRule(), dst_port: '22', src_ip: '23.0.0.0/32' }, 'the API normalised the address');
    assert.deepEqual(back[1], { ...emptyRule(), action: 'drop', ip_proto: '' });
  });

  test("the API's error on one field of one rule goes beside that field of that rule, the others above the rules", async () => {
    const rules = [emptyRule(), { ...emptyRule(), dst_port: '70000' }];
    const r = await t.call('POST', '/fwpolicies/', { name: 'p', rules: toRules(rules) });
    assert.equal(r.status, 400);
    const placed = placePolicyErrors(r.body, rules.length);
    assert.deepEqual(Object.keys(placed.fields), ['rules.1.dst_port']);
    assert.match(placed.fields['rules.1.dst_port']![0]!, /70000/);
    assert.deepEqual(placed.general, []);
    const whole = placePolicyErrors(
      [
        { error_message: 'A policy has at most 100 rules', error_point: 'rules', error_type: 'validation' },
        { error_message: 'Rule 5 is not an object', error_point: 'rules.5', error_type: 'validation' },
        { error_message: 'too long', error_point: 'name', error_type: 'validation' },
        { error_message: 'Not enough capacity', error_point: null, error_type: 'concurrency' },
      ],
      2,
    );
    assert.deepEqual(whole.fields, { rules: ['A policy has at most 100 rules', 'Rule 5 is not an object'], name: ['too long'] });
    assert.deepEqual(whole.general, ['Not enough capacity']);
  });

  test("putting a policy on one NIC leaves the others' as they are, and null takes it off", () => {
    const nics = [
      { mac: 'a', vlan: null, model: 'virtio' },
      { mac: 'b', vlan: null, model: 'virtio' },
    ];
    assert.deepEqual(withPolicy(nics, 'b', 'p1'), [nics[0], { ...nics[1], firewall_policy: 'p1' }]);
    assert.deepEqual(withPolicy(nics, 'a', null)[0], { ...nics[0], firewall_policy: null });
    assert.throws(() => withPolicy(nics, 'c', 'p1'), /no NIC c/);
  });

  test('a subscription amount goes as a number when it is one, else as typed so that the API refuses it', async () => {
    assert.deepEqual(subscriptionBody({ resource: 'ip', amount: ' 2 ', period: ' 1 month ', auto_renew: false }), {
      objects: [{ resource: 'ip', amount: 2, period: '1 month', auto_renew: false }],
    });
    const bad = await t.call('POST', '/subscriptions/', subscriptionBody({ resource: 'ip', amount: 'two', period: '1 month', auto_renew: true }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body[0].error_point, 'amount');
    const good = await t.call('POST', '/subscriptions/', subscriptionBody({ resource: 'vlan', amount: '1', period: '1 month', auto_renew: true }));
    assert.equal(good.status, 201, good.text);
  });

  test('a profile save sends only the fields changed in the form', async () => {
    const before = (await t.call('GET', '/profile/')).body;
    const draft = { first_name: 'Ada', last_name: String(before.last_name), clone_naming: String(before.clone_naming), autotopup_amount: '0' };
    const changes = profileChanges(before, draft);
    assert.deepEqual(changes, { first_name: 'Ada' });
    // Another tab's change meanwhile is not put back by this form's save.
    await t.call('PUT', '/profile/', { last_name: 'Lovelace' });
    assert.equal((await t.call('PUT', '/profile/', changes)).status, 200);
    const after = (await t.call('GET', '/profile/')).body;
    assert.deepEqual([after.first_name, after.last_name], ['Ada', 'Lovelace']);
    assert.deepEqual(profileChanges(after, { ...draft, last_name: 'Lovelace' }), {});
  });
});
