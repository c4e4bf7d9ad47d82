import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { dhcpReply, dnsRefusal, parseUdp, udpFrame, LEASE_SECONDS } from '../src/hypervisor/qemu/guestnet.ts';
import { guestAtPrompt, loopbackAddress, qemuHarness, tempDataDir, type GuestAtPrompt } from './helpers/drivers.ts';

/**
 * With egress off (QEMU's restrict=on, the default) a guest's public NIC still gets a whole lease: its address, a
 * default route and a nameserver, and both exist (the gateway answers ping, the nameserver answers queries at once
 * with "no such name"), while nothing the guest opens reaches the host. First the driver's answers frame by frame,
 * then in a real (tiny) guest through its DHCP client.
 */
const LAN = { guest: '10.0.2.15', host: '10.0.2.2', dns: '10.0.2.3', mask: '255.255.255.0' };
const GUEST_MAC = Buffer.from([0x22, 0x79, 0, 0, 0, 1]);

function dhcpFrame(type: number, extra: Buffer[] = []): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0xdeadbeef, 4);
  GUEST_MAC.copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const payload = Buffer.concat([b, Buffer.from([53, 1, type]), ...extra, Buffer.from([255])]);
  return udpFrame({ srcMac: GUEST_MAC, dstMac: Buffer.alloc(6, 0xff), srcIp: '0.0.0.0', dstIp: '255.255.255.255', srcPort: 68, dstPort: 67, payload });
}

function options(frame: Buffer): Map<number, string> {
  const p = parseUdp(frame)!.payload;
  const out = new Map<number, string>();
  for (let i = 240; p[i] !== 255; i += 2 + p[i + 1]!) out.set(p[i]!, [...p.subarray(i + 2, i + 2 + p[i + 1]!)].join('.'));
  return out;
}

describe('the lease the driver gives (frames)', () => {
  test('DISCOVER is offered the forwarded address with mask, default route, nameserver and a lease time', () => {
    const offer = dhcpReply(dhcpFrame(1), LAN)!;
    const u = parseUdp(offer)!;
    assert.deepEqual([u.srcIp, u.dstIp, u.srcPort, u.dstPort], ['10.0.2.2', '255.255.255.255', 67, 68]);
    assert.equal([...u.payload.subarray(16, 20)].join('.'), '10.0.2.15');
    assert.equal(u.payload.readUInt32BE(4), 0xdeadbeef);
    assert.ok(u.payload.subarray(28, 34).equals(GUEST_MAC));
    const o = options(offer);
    assert.equal(o.get(53), '2');
    assert.equal(o.get(1), '255.255.255.0');
    assert.equal(o.get(3), '10.0.2.2');
    assert.equal(o.get(6), '10.0.2.3');
    assert.equal(o.get(54), '10.0.2.2');
    assert.equal(o.get(51), [0, 1, 81, 128].join('.')); // 86400 s
    assert.equal(LEASE_SECONDS, 86400);
  });

  test('REQUEST of that address is acknowledged; of another one refused (NAK), so the client starts over', () => {
    assert.equal(options(dhcpReply(dhcpFrame(3, [Buffer.from([50, 4, 10, 0, 2, 15])]), LAN)!).get(53), '5');
    assert.equal(options(dhcpReply(dhcpFrame(3, [Buffer.from([50, 4, 192, 168, 1, 9])]), LAN)!).get(53), '6');
  });

  test('frames that are no DHCP request are not answered', () => {
    assert.equal(dhcpReply(dhcpFrame(7), LAN), null); // RELEASE
    assert.equal(dhcpReply(Buffer.alloc(60), LAN), null);
  });

  test('a DNS query to the nameserver gets NXDOMAIN with its question; queries elsewhere pass', () => {
    const question = Buffer.from([7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1]);
    const query = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), question]);
    const frame = (dstIp: string) =>
      udpFrame({ srcMac: GUEST_MAC, dstMac: Buffer.alloc(6, 1), srcIp: '10.0.2.15', dstIp, srcPort: 40000, dstPort: 53, payload: query });
    const u = parseUdp(dnsRefusal(frame('10.0.2.3'), LAN)!)!;
    assert.deepEqual([u.srcIp, u.dstIp, u.srcPort, u.dstPort], ['10.0.2.3', '10.0.2.15', 53, 40000]);
    assert.equal(u.payload.readUInt16BE(0), 0x1234);
    assert.equal(u.payload[2]! & 0x81, 0x81, 'a response, recursion desired as asked');
    assert.equal(u.payload[3]! & 0x0f, 3, 'NXDOMAIN');
    assert.equal(u.payload.readUInt16BE(4), 1);
    assert.ok(u.payload.subarray(12).equals(question));
    assert.equal(dnsRefusal(frame('192.0.2.53'), LAN), null);
  });
});

const h = qemuHarness();

describe('a tiny guest without egress', { skip: h.skip ?? false }, () => {
  let guest: GuestAtPrompt | undefined;
  const run = (cmd: string, timeoutMs?: number) => guest!.run(cmd, timeoutMs);

  before(async () => {
    const dataDir = tempDataDir('qemu-lease');
    const nic = { mac: '22:79:00:00:00:01', model: 'virtio', boot_order: null, kind: 'public' as const, ip: loopbackAddress(4, 10), vlan: null };
    guest = await guestAtPrompt(h.create(dataDir), h.spec(dataDir, { nics: [nic] }), dataDir, h.bootTimeoutMs);
  });

  after(async () => guest?.stop());

  test('its DHCP client sets address, default route and nameserver; gateway and nameserver answer', async () => {
    assert.match(await run('ip -4 addr show eth0'), /inet 10\.0\.2\.15\/24/);
    assert.match(await run('ip route'), /default via 10\.0\.2\.2 dev eth0/);
    assert.match(await run('cat /etc/resolv.conf'), /nameserver 10\.0\.2\.3/);
    assert.match(await run('ping -c 1 -W 3 10.0.2.2'), /1 packets received/);
    assert.match(await run('nslookup no-such-host.example'), /NXDOMAIN/);
  });

  test('what the guest opens towards its gateway reaches nothing on the host', async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const out = await run(`nc -w 3 10.0.2.2 ${port} </dev/null; echo "nc exit $?"`, 30_000);
      assert.match(out, /nc exit [1-9]/);
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });
});
