import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, firstMatch, readRules, type FirewallRule, type Packet } from '../src/domain/firewall.ts';
import { ApiError } from '../src/errors.ts';
import { readDump, readFixture } from './helpers/dumps.ts';

const pointOf = (f: () => unknown): string | null => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.statusCode, 400);
    assert.equal(e.errors[0]!.error_type, 'validation');
    return e.errors[0]!.error_point;
  }
  assert.fail('no error');
};

const tcpIn = (over: Partial<Packet> = {}): Packet => ({
  direction: 'in',
  proto: 'tcp',
  srcIp: '198.51.100.7',
  srcPort: 40000,
  dstIp: '203.0.113.5',
  dstPort: 22,
  ...over,
});

test('the rules of the historical create request read back exactly as CloudSigma answered them', () => {
  const request = readDump('fwpolicies/request_fwpolicy_create_full').body.objects[0].rules;
  const answer = readDump('fwpolicies/response_fwpolicy_create_full').body.objects[0].rules;
  assert.deepEqual(readRules(request), answer);
  // and what CloudSigma answered reads back unchanged (a GET-edit-PUT round trip changes nothing)
  assert.deepEqual(readRules(answer), answer);
  for (const name of ['fwpolicies_create_with_rules.json', 'fwpolicies_detail.json'])
    for (const p of readFixture(name).objects) assert.deepEqual(readRules(p.rules), p.rules, name);
});

test('addresses: partial dotted quads, CIDRs and negation are normalised to a.b.c.d/n', () => {
  const one = (src_ip: unknown) => readRules([{ action: 'drop', direction: 'in', src_ip }])[0]!.src_ip;
  assert.equal(one('23'), '23.0.0.0/32');
  assert.equal(one('10.1'), '10.1.0.0/32');
  assert.equal(one('172.66.32.0/24'), '172.66.32.0/24');
  assert.equal(one('!172.66.32.55'), '!172.66.32.55/32');
  assert.equal(one(' 0.0.0.0/0 '), '0.0.0.0/0');
  assert.equal(one(''), null);
  assert.equal(one(null), null);
  for (const bad of ['256.1.1.1', '1.2.3.4/33', '1.2.3.4.5', 'example.com', '::1', '1.2.3.4/', '!!1.2.3.4', 17])
    assert.equal(
      pointOf(() =>
        readRules([
          { action: 'drop', direction: 'in' },
          { action: 'drop', direction: 'in', dst_ip: bad },
        ]),
      ),
      'rules.1.dst_ip',
      String(bad),
    );
});

test('ports: single values, from:to ranges and negation; bad ones name the rule and field', () => {
  const one = (dst_port: unknown) => readRules([{ action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port }])[0]!.dst_port;
  assert.equal(one('22'), '22');
  assert.equal(one(22), '22');
  assert.equal(one('1:1024'), '1:1024');
  assert.equal(one('!1:1024'), '!1:1024');
  assert.equal(one('!22'), '!22');
  assert.equal(one('0080'), '80');
  for (const bad of ['65536', '1024:1', 'ssh', '22,80', '1:2:3', '-1', '22.5', true])
    assert.equal(
      pointOf(() => readRules([{ action: 'accept', direction: 'in', src_port: bad }])),
      'rules.0.src_port',
      String(bad),
    );
});

test('action and direction are required choices; ip_proto is tcp, udp or null; comment is text', () => {
  assert.equal(
    pointOf(() => readRules([{ direction: 'in' }])),
    'rules.0.action',
  );
  assert.equal(
    pointOf(() => readRules([{ action: 'reject', direction: 'in' }])),
    'rules.0.action',
  );
  assert.equal(
    pointOf(() => readRules([{ action: 'drop' }])),
    'rules.0.direction',
  );
  assert.equal(
    pointOf(() => readRules([{ action: 'drop', direction: 'sideways' }])),
    'rules.0.direction',
  );
  assert.equal(
    pointOf(() => readRules([{ action: 'drop', direction: 'in', ip_proto: 'icmp' }])),
    'rules.0.ip_proto',
  );
  assert.equal(
    pointOf(() => readRules([{ action: 'drop', direction: 'in', comment: 5 }])),
    'rules.0.comment',
  );
  assert.equal(
    pointOf(() => readRules({ action: 'drop' })),
    'rules',
  );
  assert.equal(
    pointOf(() => readRules(['drop'])),
    'rules.0',
  );
  const [r] = readRules([{ action: 'ACCEPT', direction: 'Both', ip_proto: 'UDP', unknown: 1 }]);
  assert.deepEqual(r, { action: 'accept', comment: null, direction: 'both', dst_ip: null, dst_port: null, ip_proto: 'udp', src_ip: null, src_port: null });
});

test('the historical policy decides packets rule by rule, the first match winning', () => {
  const policy = { rules: readDump('fwpolicies/response_fwpolicy_get').body.rules as FirewallRule[] };
  // rule 0: out to 23.0.0.0/32 is dropped, whatever the protocol
  assert.equal(decide(policy, { direction: 'out', proto: 'icmp', srcIp: '203.0.113.5', dstIp: '23.0.0.0' }), 'drop');
  assert.equal(firstMatch(policy.rules, { direction: 'out', proto: 'tcp', srcIp: '203.0.113.5', srcPort: 5000, dstIp: '23.0.0.0', dstPort: 80 }), 0);
  assert.equal(decide(policy, { direction: 'out', proto: 'tcp', srcIp: '203.0.113.5', srcPort: 5000, dstIp: '23.0.0.1', dstPort: 80 }), 'accept');
  // rule 1 before rule 2: SSH from the office is accepted, SSH from anywhere else dropped
  assert.equal(firstMatch(policy.rules, tcpIn({ srcIp: '172.66.32.200' })), 1);
  assert.equal(decide(policy, tcpIn({ srcIp: '172.66.32.200' })), 'accept');
  assert.equal(firstMatch(policy.rules, tcpIn({ srcIp: '172.66.33.1' })), 2);
  assert.equal(decide(policy, tcpIn({ srcIp: '172.66.33.1' })), 'drop');
  // rule 3: UDP in is dropped unless it comes from 172.66.32.55 (negation)
  assert.equal(decide(policy, { direction: 'in', proto: 'udp', srcIp: '8.8.8.8', srcPort: 53, dstIp: '203.0.113.5', dstPort: 5353 }), 'drop');
  assert.equal(decide(policy, { direction: 'in', proto: 'udp', srcIp: '172.66.32.55', srcPort: 53, dstIp: '203.0.113.5', dstPort: 5353 }), 'accept');
  // rule 4: TCP in to a port outside 1-1024 is dropped, inside it is accepted (no rule matches)
  assert.equal(firstMatch(policy.rules, tcpIn({ dstPort: 8080 })), 4);
  assert.equal(decide(policy, tcpIn({ dstPort: 8080 })), 'drop');
  assert.equal(decide(policy, tcpIn({ dstPort: 1024 })), 'accept');
  assert.equal(decide(policy, tcpIn({ dstPort: 1 })), 'accept');
  assert.equal(firstMatch(policy.rules, tcpIn({ dstPort: 443 })), -1);
  // ICMP in matches no port rule, negated or not: accepted
  assert.equal(decide(policy, { direction: 'in', proto: 'icmp', srcIp: '8.8.8.8', dstIp: '203.0.113.5' }), 'accept');
});

test('no policy, an empty policy and a packet no rule matches are accepted; order alone decides between rules', () => {
  assert.equal(decide(null, tcpIn()), 'accept');
  assert.equal(decide({ rules: [] }, tcpIn()), 'accept');
  const dropThenAccept = readRules([
    { action: 'drop', direction: 'both' },
    { action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '22' },
  ]);
  assert.equal(decide({ rules: dropThenAccept }, tcpIn()), 'drop');
  assert.equal(decide({ rules: [...dropThenAccept].reverse() }, tcpIn()), 'accept');
  assert.equal(decide({ rules: [...dropThenAccept].reverse() }, tcpIn({ dstPort: 80 })), 'drop');
  // direction: an `in` rule never decides outgoing traffic
  const inOnly = readRules([{ action: 'drop', direction: 'in' }]);
  assert.equal(decide({ rules: inOnly }, tcpIn()), 'drop');
  assert.equal(decide({ rules: inOnly }, tcpIn({ direction: 'out' })), 'accept');
  // a port rule without a protocol matches tcp and udp alike
  const anyProto = readRules([{ action: 'drop', direction: 'in', dst_port: '53' }]);
  assert.equal(decide({ rules: anyProto }, tcpIn({ dstPort: 53 })), 'drop');
  assert.equal(decide({ rules: anyProto }, tcpIn({ proto: 'udp', dstPort: 53 })), 'drop');
  assert.equal(decide({ rules: anyProto }, tcpIn({ dstPort: 54 })), 'accept');
});

test('CIDR and range edges: the network, broadcast and both range ends are inside; /0 matches all; !/0 matches none', () => {
  const rules = (r: Record<string, unknown>) => ({ rules: readRules([{ action: 'drop', direction: 'in', ...r }]) });
  const net = rules({ src_ip: '10.0.0.0/8' });
  assert.equal(decide(net, tcpIn({ srcIp: '10.0.0.0' })), 'drop');
  assert.equal(decide(net, tcpIn({ srcIp: '10.255.255.255' })), 'drop');
  assert.equal(decide(net, tcpIn({ srcIp: '11.0.0.0' })), 'accept');
  assert.equal(decide(net, tcpIn({ srcIp: '9.255.255.255' })), 'accept');
  // a host address written with its prefix (172.66.32.5/24) stands for the whole network
  assert.equal(decide(rules({ src_ip: '172.66.32.5/24' }), tcpIn({ srcIp: '172.66.32.250' })), 'drop');
  assert.equal(decide(rules({ src_ip: '0.0.0.0/0' }), tcpIn({ srcIp: '255.255.255.255' })), 'drop');
  assert.equal(decide(rules({ src_ip: '!0.0.0.0/0' }), tcpIn()), 'accept');
  const range = rules({ ip_proto: 'tcp', src_port: '1000:2000' });
  assert.equal(decide(range, tcpIn({ srcPort: 1000 })), 'drop');
  assert.equal(decide(range, tcpIn({ srcPort: 2000 })), 'drop');
  assert.equal(decide(range, tcpIn({ srcPort: 999 })), 'accept');
  assert.equal(decide(range, tcpIn({ srcPort: 2001 })), 'accept');
  const notDst = rules({ dst_ip: '!203.0.113.5' });
  assert.equal(decide(notDst, tcpIn()), 'accept');
  assert.equal(decide(notDst, tcpIn({ dstIp: '203.0.113.6' })), 'drop');
  // an address that is not IPv4 matches no address condition
  assert.equal(decide(notDst, tcpIn({ dstIp: '2001:db8::1' })), 'accept');
});

test('forwarded ports: the defaults without a policy; accept rules open ports, the first match decides, ranges are bounded', async () => {
  const { forwardedPorts, readRules, MAX_FORWARDED_PORTS } = await import('../src/domain/firewall.ts');
  const at = { hostIp: '127.0.0.1', guestIp: '127.201.0.5' };
  assert.deepEqual(forwardedPorts(null, [22, 80, 443], at), [22, 80, 443]);
  const policy = (rules: unknown[]) => ({ rules: readRules(rules, 'rules') });
  assert.deepEqual(forwardedPorts(policy([]), [22, 80, 443], at), [22, 80, 443]);
  assert.deepEqual(
    forwardedPorts(
      policy([
        { action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '80' },
        { action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '8000:8002' },
      ]),
      [22, 80, 443],
      at,
    ),
    [22, 443, 8000, 8001, 8002],
  );
  // the first match decides: an accept of 80 before a drop of everything keeps 80 only
  assert.deepEqual(
    forwardedPorts(
      policy([
        { action: 'accept', direction: 'in', dst_port: '80' },
        { action: 'drop', direction: 'in' },
      ]),
      [22, 80, 443],
      at,
    ),
    [80],
  );
  // outbound and udp rules, and a range wider than the bound, open nothing
  const wide = policy([
    { action: 'accept', direction: 'out', dst_port: '9000' },
    { action: 'accept', direction: 'in', ip_proto: 'udp', dst_port: '53' },
    { action: 'accept', direction: 'in', dst_port: '1:65535' },
  ]);
  assert.deepEqual(forwardedPorts(wide, [22], at), [22]);
  assert.ok(MAX_FORWARDED_PORTS >= 16);
});
