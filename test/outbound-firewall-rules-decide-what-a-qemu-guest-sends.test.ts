import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { GuestSpec } from '../src/hypervisor/driver.ts';
import { QemuDriver } from '../src/hypervisor/qemu/index.ts';
import { readRules } from '../src/domain/firewall.ts';
import { guestAtPrompt, loopbackAddress, qemuHarness, tempDataDir, type GuestAtPrompt } from './helpers/drivers.ts';

/**
 * With egress on, a public NIC's policy decides what the guest's connections out may reach: a drop rule on an
 * outbound port stops the guest's connection to it, and replacing the rules on the running guest lets the next one
 * through. The only destination is this host's own listener (QEMU's gateway address leads to the host's loopback),
 * so nothing leaves the machine. Tiny guest at 128 MiB.
 */
const h = qemuHarness();

describe('outbound rules on a QEMU guest with egress on', { skip: h.skip ?? false }, () => {
  let dataDir: string;
  let driver: QemuDriver;
  let spec: GuestSpec;
  let guest: GuestAtPrompt | undefined;
  let port: number;
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.end('hello\n');
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
    dataDir = tempDataDir('qemu-outbound');
    driver = new QemuDriver({ dataDir, guestEgress: true, vncDisplayBase: 150 + ((process.pid + 7) % 500) });
    const rules = readRules([{ action: 'drop', direction: 'out', ip_proto: 'tcp', dst_port: String(port) }]);
    const nic = {
      mac: '22:7a:00:00:00:01',
      model: 'virtio',
      boot_order: null,
      kind: 'public' as const,
      ip: loopbackAddress(5, 10),
      vlan: null,
      outbound: rules,
    };
    spec = h.spec(dataDir, { nics: [nic] });
    guest = await guestAtPrompt(driver, spec, dataDir, h.bootTimeoutMs);
  });

  after(async () => {
    await guest?.stop();
    server.close();
  });

  test('a dropped port is not reached; once the rules change on the running guest it is', async () => {
    const dropped = await guest!.run(`nc -w 3 10.0.2.2 ${port} </dev/null; echo "nc exit $?"`);
    assert.equal(connections, 0, dropped);
    await driver.setOutboundRules(spec.uuid, spec.nics[0]!.mac, []);
    const open = await guest!.run(`nc -w 3 10.0.2.2 ${port} </dev/null`);
    assert.match(open, /hello/);
    assert.equal(connections, 1);
  });
});
