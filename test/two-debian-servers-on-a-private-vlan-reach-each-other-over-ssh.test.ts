import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { debianImage, loopbackPools } from './helpers/drivers.ts';
import { debianWorkDir, sshAs, sshBanner } from './helpers/ssh.ts';

/**
 * Two Debian servers of one account, each with a public dhcp NIC and a NIC on the account's private VLAN, whose
 * VLAN addresses their user-data sets: from the first, `ssh` to the second's VLAN address logs in to the second.
 * (That a guest on another VLAN sees nothing of it is tested with tiny guests in qemu-guest.test.ts.)
 */
const LIB_DEBIAN = '6f0c1b0e-5d7a-4e43-9c58-0d3d1a2b7c12';
const img = debianImage();
const MiB = 2 ** 20;

describe('two Debian servers on a private VLAN', { skip: 'skip' in img ? `no Debian image: ${img.skip}` : false }, () => {
  let t: TestServer;
  let work: string;
  let key: string;

  before(async () => {
    if ('skip' in img) return;
    const dir = debianWorkDir('vlan-e2e', img.dir);
    work = dir.work;
    key = dir.key;
    const lib = dir.lib;
    t = await startServer({ OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_LIBRARY_DIR: lib, ...loopbackPools() });
  });

  after(async () => {
    if (!t) return;
    const list = await t.call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
    await new Promise((r) => setTimeout(r, 3000));
    await t.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** User-data: put `address` on the NIC with `mac` (private NICs get no DHCP), and optionally the key to log in onwards. */
  const userData = (mac: string, address: string, withKey: boolean) =>
    [
      '#!/bin/sh',
      `i=$(ip -o link | grep -i '${mac}' | cut -d: -f2 | tr -d ' ')`,
      'ip link set "$i" up',
      `ip addr add ${address}/24 dev "$i"`,
      ...(withKey
        ? [
            'install -d -m 700 -o debian -g debian /home/debian/.ssh',
            "cat > /home/debian/.ssh/id_ed25519 <<'KEY'",
            fs.readFileSync(key, 'utf8').trim(),
            'KEY',
            'chown debian:debian /home/debian/.ssh/id_ed25519 && chmod 600 /home/debian/.ssh/id_ed25519',
          ]
        : []),
      '',
    ].join('\n');

  test('the first server logs in to the second over the VLAN, at the address its user-data set', async () => {
    const subs = await t.call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 1, period: '1 month' }]);
    assert.equal(subs.status, 201, JSON.stringify(subs.body));
    const vlan = subs.body.objects[0].subscribed_object as string;
    const kp = await t.call('POST', '/keypairs/', { name: 'vlan key', public_key: fs.readFileSync(`${key}.pub`, 'utf8').trim() });
    assert.equal(kp.status, 201, JSON.stringify(kp.body));

    const servers: Array<{ uuid: string; name: string; vlanAddress: string }> = [];
    for (const [n, name] of ['vlan-a', 'vlan-b'].entries()) {
      const cl = await t.call('POST', `/libdrives/${LIB_DEBIAN}/action/?do=clone`, { name: `${name} disk` });
      assert.equal(cl.status, 202, JSON.stringify(cl.body));
      const drive = cl.body.objects[0].uuid as string;
      await waitFor(async () => (await t.call('GET', `/drives/${drive}/`)).body.status === 'unmounted', 120_000, 'the clone');
      const created = await t.call('POST', '/servers/', {
        name,
        cpu: 2000,
        mem: 640 * MiB,
        vnc_password: 'vlanpas1',
        pubkeys: [kp.body.objects[0].uuid],
        drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
        nics: [
          { ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' },
          { vlan, model: 'virtio' },
        ],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const s = created.body.objects[0];
      const vlanAddress = `192.168.50.${n + 1}`;
      const meta = {
        'cloudinit-user-data': Buffer.from(userData(s.nics[1].mac, vlanAddress, n === 0)).toString('base64'),
        base64_fields: 'cloudinit-user-data',
      };
      const put = await t.call('PUT', `/servers/${s.uuid}/`, { ...s, meta });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      servers.push({ uuid: s.uuid, name, vlanAddress });
    }
    for (const s of servers) assert.equal((await t.call('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
    const publicIp: string[] = [];
    for (const s of servers) {
      const running = await waitForStatus(t, s.uuid, 'running', 60_000);
      publicIp.push(running.runtime.nics[0].ip_v4.uuid as string);
    }
    for (const ip of publicIp) await sshBanner(ip, 900_000);
    const ssh = sshAs(key);
    // Both have run their user-data (the address is set) once cloud-init is done.
    for (const ip of publicIp) await ssh(ip, 'cloud-init status --wait >/dev/null || true');
    const onward = await ssh(
      publicIp[0]!,
      `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=30 debian@${servers[1]!.vlanAddress} ` +
        `'hostname; ip -4 -o addr show'`,
    );
    assert.match(onward, new RegExp(`^${servers[1]!.name}\\n`), `logged in to the second server over the VLAN: ${onward}`);
    assert.match(onward, /inet 192\.168\.50\.2\/24/);
    // The VLAN address is the VLAN's only: the first server's public side reaches nothing there but through the VLAN NIC.
    const route = await ssh(publicIp[0]!, `ip route get ${servers[1]!.vlanAddress}`);
    assert.doesNotMatch(route, /via /, `reached directly on the VLAN, not through a gateway: ${route}`);
  });
});
