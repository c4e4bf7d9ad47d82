import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCommandLine, portForwards, publicNet, type HostSettings } from '../src/hypervisor/qemu/cmdline.ts';
import { DriverError, type GuestSpec } from '../src/hypervisor/driver.ts';

/**
 * Golden tests of the QEMU argv built from server definitions: one file per interesting definition under
 * test/golden/qemu-cmdline/, one argument per line. Regenerate with UPDATE_GOLDEN=1 and review the diff.
 */
const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden', 'qemu-cmdline');
const MiB = 2 ** 20;
const host: HostSettings = { accel: 'tcg', runDir: '/var/lib/opensigma/qemu/guest' };

function spec(over: Partial<GuestSpec>): GuestSpec {
  return {
    uuid: '4b9d6c2e-1c1d-4a43-9d5e-8f0b2f6a0001',
    name: 'test server',
    cpu: 1000,
    mem: 256 * MiB,
    smp: 1,
    cpu_type: 'amd',
    cpu_model: null,
    cpus_instead_of_cores: false,
    enable_numa: false,
    hv_relaxed: false,
    hv_tsc: false,
    vnc_password: 'secret',
    context: false,
    meta: {},
    drives: [],
    nics: [],
    ...over,
  };
}

const disk = (n: number, over: Partial<GuestSpec['drives'][number]> = {}): GuestSpec['drives'][number] => ({
  uuid: `d0000000-0000-4000-8000-00000000000${n}`,
  device: 'virtio',
  dev_channel: '0:0',
  boot_order: null,
  media: 'disk',
  path: `/var/lib/opensigma/drives/d${n}.qcow2`,
  format: 'qcow2',
  ...over,
});

function golden(name: string, argv: string[]): void {
  const file = path.join(GOLDEN, `${name}.txt`);
  const text = argv.join('\n') + '\n';
  if (process.env.UPDATE_GOLDEN === '1' || !fs.existsSync(file)) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, text);
    if (process.env.UPDATE_GOLDEN !== '1') assert.fail(`golden file ${name}.txt was missing and has been written: review it`);
  }
  assert.equal(text, fs.readFileSync(file, 'utf8'), `argv differs from golden ${name}.txt (UPDATE_GOLDEN=1 to regenerate)`);
}

test('minimal server: one cpu, tcg, serial, QMP, VNC with password, no drives or NICs', () => {
  golden('minimal', buildCommandLine(spec({}), host));
});

test('ide disk + virtio disk + ide cdrom, boot order, raw and qcow2, cdrom read-only', () => {
  const argv = buildCommandLine(
    spec({
      drives: [
        disk(1, { device: 'virtio', dev_channel: '0:0', boot_order: 2 }),
        disk(2, { device: 'ide', dev_channel: '0:1', format: 'raw', path: '/var/lib/opensigma/drives/d2.img' }),
        disk(3, { device: 'ide', dev_channel: '1:0', media: 'cdrom', format: 'raw', boot_order: 1, path: '/var/lib/opensigma/drives/boot.iso' }),
      ],
    }),
    host,
  );
  golden('ide-virtio-cdrom', argv);
  const cd = argv.find((a) => a.includes('d0000000-0000-4000-8000-000000000003') && a.startsWith('file='));
  assert.match(cd!, /media=cdrom,readonly=on/);
});

test('scsi disks on two controllers', () => {
  golden(
    'scsi',
    buildCommandLine(
      spec({
        drives: [
          disk(1, { device: 'scsi', dev_channel: '0:0', boot_order: 1 }),
          disk(2, { device: 'scsi', dev_channel: '0:3' }),
          disk(3, { device: 'scsi', dev_channel: '1:0', media: 'cdrom', format: 'raw' }),
        ],
      }),
      host,
    ),
  );
});

test('4 vCPUs as sockets with NUMA: one node per socket, memory split', () => {
  golden('numa-sockets', buildCommandLine(spec({ smp: 4, cpu: 8000, mem: 1024 * MiB, cpus_instead_of_cores: true, enable_numa: true }), host));
});

test('2 vCPUs as cores of one socket', () => {
  const argv = buildCommandLine(spec({ smp: 2, cpu: 4000 }), host);
  assert.equal(argv[argv.indexOf('-smp') + 1], '2,sockets=1,cores=2,threads=1');
});

test('hv_relaxed + hv_tsc on kvm64, context port on', () => {
  golden('hv-kvm64-context', buildCommandLine(spec({ hv_relaxed: true, hv_tsc: true, cpu_model: 'kvm64', context: true }), host));
});

test('kvm accel uses -cpu host unless kvm64 is asked for', () => {
  const argv = buildCommandLine(spec({}), { ...host, accel: 'kvm' });
  assert.equal(argv[argv.indexOf('-accel') + 1], 'kvm');
  assert.equal(argv[argv.indexOf('-cpu') + 1], 'host');
});

test('public dhcp NIC + private VLAN NIC + unconnected NIC, models and MACs', () => {
  golden(
    'nics',
    buildCommandLine(
      spec({
        nics: [
          { mac: '22:4B:9D:00:00:01', model: 'virtio', boot_order: null, kind: 'public', ip: '127.202.3.7', vlan: null },
          { mac: '22:4b:9d:00:00:02', model: 'e1000', boot_order: 3, kind: 'private', ip: null, vlan: 'aaaa0000-0000-4000-8000-000000000001' },
          { mac: '22:4b:9d:00:00:03', model: 'rtl8139', boot_order: null, kind: 'none', ip: null, vlan: null },
        ],
      }),
      host,
    ),
  );
});

test('a public NIC without an IPv4 address is on a hub of its own, not on user networking', () => {
  const argv = buildCommandLine(spec({ nics: [{ mac: '22:4b:9d:00:00:09', model: 'virtio', boot_order: null, kind: 'public', ip: null, vlan: null }] }), host);
  assert.equal(argv[argv.indexOf('-netdev') + 1], 'hubport,id=net0,hubid=100');
});

test('VNC listens where the host says', () => {
  const argv = buildCommandLine(spec({}), { ...host, vncHost: '0.0.0.0', vncDisplayBase: 7 });
  assert.equal(argv[argv.indexOf('-vnc') + 1], '0.0.0.0:7,to=906,password=on');
});

test('a public NIC: QEMU translates its loopback address to a private one, forwarding SSH, HTTP and HTTPS', () => {
  const nic = { mac: '22:4b:9d:00:00:01', model: 'virtio', boot_order: null, kind: 'public' as const, ip: '127.202.0.9', vlan: null };
  const argv = buildCommandLine(spec({ nics: [nic, { ...nic, mac: '22:4b:9d:00:00:02', ip: '127.202.0.10' }] }), host);
  const netdevs = argv.filter((_, i) => argv[i - 1] === '-netdev');
  assert.deepEqual(netdevs, [
    'user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.15,restrict=on' +
      ',hostfwd=tcp:127.202.0.9:22-:22,hostfwd=tcp:127.202.0.9:80-:80,hostfwd=tcp:127.202.0.9:443-:443',
    'user,id=net1,net=10.0.3.0/24,host=10.0.3.2,dns=10.0.3.3,dhcpstart=10.0.3.15,restrict=on' +
      ',hostfwd=tcp:127.202.0.10:22-:22,hostfwd=tcp:127.202.0.10:80-:80,hostfwd=tcp:127.202.0.10:443-:443',
  ]);
  // The ports a NIC lists (where a firewall policy will say which are open) replace the default ones.
  assert.deepEqual(portForwards({ ...nic, ports: [8080, 22, 22] }), [
    { proto: 'tcp', hostAddr: '127.202.0.9', hostPort: 22, guestPort: 22 },
    { proto: 'tcp', hostAddr: '127.202.0.9', hostPort: 8080, guestPort: 8080 },
  ]);
  assert.deepEqual(portForwards({ ...nic, ip: null }), []);
  assert.throws(
    () => portForwards({ ...nic, ports: [0] }),
    (e: unknown) => e instanceof DriverError && e.code === 'invalid',
  );
  assert.throws(() => portForwards({ ...nic, ip: '127.1' }), DriverError);
});

test('a Debian server as the end-to-end test makes it: context, a dhcp NIC forwarded on its loopback address, 2 vCPUs, 1 GiB', () => {
  golden(
    'debian-server',
    buildCommandLine(
      spec({
        name: 'debian-e2e',
        cpu: 2000,
        smp: 2,
        mem: 1024 * MiB,
        context: true,
        drives: [disk(1, { boot_order: 1, format: 'raw', path: '/var/lib/opensigma/drives/d1.img' })],
        nics: [{ mac: '22:4b:9d:00:00:0a', model: 'virtio', boot_order: null, kind: 'public', ip: '127.202.0.2', vlan: null }],
      }),
      host,
    ),
  );
});

test('guest egress: off (restrict=on) unless the host setting turns it on', () => {
  const nic = { mac: '22:4b:9d:00:00:01', model: 'virtio', boot_order: null, kind: 'public' as const, ip: '127.202.0.9', vlan: null };
  const on = buildCommandLine(spec({ nics: [nic] }), { ...host, guestEgress: true });
  assert.match(on[on.indexOf('-netdev') + 1]!, /,restrict=off,/);
  const off = buildCommandLine(spec({ nics: [nic] }), host);
  assert.match(off[off.indexOf('-netdev') + 1]!, /,restrict=on,/);
  // Either way what the guest sends passes through the driver, which gives the lease its route and nameserver.
  for (const argv of [on, off]) assert.ok(argv.includes('filter-redirector,id=net0-fsent,netdev=net0,queue=rx,outdev=net0-sent,indev=net0-pass'));
});

test('every guest says it runs on CloudSigma (SMBIOS), which is what makes cloud-init read the context', () => {
  const argv = buildCommandLine(spec({ context: true }), host);
  assert.equal(argv[argv.indexOf('-smbios') + 1], 'type=1,manufacturer=CloudSigma,product=CloudSigma');
  assert.equal(argv[argv.indexOf('-accel') + 1], 'tcg,tb-size=256');
});

test('private address of public NIC i: 10.0.(2+i).15 behind gateway .2 and DNS .3', () => {
  assert.deepEqual(publicNet(0), { net: '10.0.2.0/24', host: '10.0.2.2', dns: '10.0.2.3', dhcpstart: '10.0.2.15', mask: '255.255.255.0' });
  assert.deepEqual(publicNet(3), { net: '10.0.5.0/24', host: '10.0.5.2', dns: '10.0.5.3', dhcpstart: '10.0.5.15', mask: '255.255.255.0' });
  assert.throws(() => publicNet(251), DriverError);
});

test('memory: bytes rounded to MiB, < 96 MiB refused as invalid', () => {
  const argv = buildCommandLine(spec({ mem: 100 * MiB + 123 }), host);
  assert.equal(argv[argv.indexOf('-m') + 1], '100M');
  assert.throws(
    () => buildCommandLine(spec({ mem: 64 * MiB }), host),
    (e: unknown) => e instanceof DriverError && e.code === 'invalid' && /at least 96 MiB/.test(e.message),
  );
});

test('a drive without image file and a bad dev_channel are invalid', () => {
  assert.throws(
    () => buildCommandLine(spec({ drives: [disk(1, { path: null })] }), host),
    (e: unknown) => e instanceof DriverError && e.code === 'invalid',
  );
  assert.throws(() => buildCommandLine(spec({ drives: [disk(1, { device: 'ide', dev_channel: '2:0' })] }), host), DriverError);
});

test('commas in paths are escaped for QEMU', () => {
  const argv = buildCommandLine(spec({ drives: [disk(1, { path: '/srv/a,b.qcow2' })] }), host);
  assert.ok(argv.includes('file=/srv/a,,b.qcow2,if=none,id=drive-d0000000-0000-4000-8000-000000000001,format=qcow2,cache=writeback,discard=unmap'));
});
