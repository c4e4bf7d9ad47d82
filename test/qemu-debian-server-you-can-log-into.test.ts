import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, basicCaller, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { serve } from '../src/server.ts';
import { debianImage, loopbackPools } from './helpers/drivers.ts';
import { debianWorkDir, sshAs, sshBanner } from './helpers/ssh.ts';

/**
 * A server you can log into, through the API only: clone the "Debian 12" library drive (bigger than the image),
 * create a server with a key pair, a dhcp NIC and user-data, start it, ssh in as debian with the key at the address
 * the API shows, find the hostname and the user-data's work, fetch the HTTP server the user-data started, write a
 * file, stop, restart opensigma, start, find the file again, shut down by ACPI.
 */
const LIB_DEBIAN = '6f0c1b0e-5d7a-4e43-9c58-0d3d1a2b7c12';
const img = debianImage();
const GiB = 2 ** 30;

describe('a Debian server you can log into over SSH', { skip: 'skip' in img ? `no Debian image: ${img.skip}` : false }, () => {
  let t: TestServer;
  /** opensigma started again on t's data dir and database, when the test got that far. */
  let restarted: Awaited<ReturnType<typeof serve>> | null = null;
  let work: string;
  let key: string;

  const ssh = (host: string, command: string) => sshAs(key)(host, command);

  before(async () => {
    if ('skip' in img) return;
    const dir = debianWorkDir('debian-e2e', img.dir);
    work = dir.work;
    key = dir.key;
    const lib = dir.lib;
    t = await startServer({ OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_LIBRARY_DIR: lib, OPENSIGMA_ACPI_TIMEOUT_S: '120', ...loopbackPools() });
  });

  after(async () => {
    if (!t) return;
    const call = restarted ? callAt(restarted.url) : t.call;
    const list = await call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await call('POST', `/servers/${s.uuid}/action/?do=stop`);
    await new Promise((r) => setTimeout(r, 3000));
    if (restarted) {
      await restarted.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    } else await t.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** The admin's calls against an opensigma at `url` (the restarted one listens on a new port). */
  const callAt = (url: string) => basicCaller(`${url}/api/2.0`, ADMIN);
  const statusAt = async (call: ReturnType<typeof callAt>, uuid: string, status: string, timeoutMs: number) =>
    waitFor(
      async () => {
        const s = (await call('GET', `/servers/${uuid}/`)).body;
        return s?.status === status ? s : null;
      },
      timeoutMs,
      `server ${status}`,
    );

  test('the image carries no machine identity: no SSH host keys, an empty machine id (each clone makes its own)', () => {
    if ('skip' in img) return;
    const raw = path.join(work, 'image.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', path.join(img.dir, 'disk.qcow2'), raw]);
    // The root file system starts 1 MiB into the disk; debugfs reads it there without mounting anything.
    const fsAt = `${raw}?offset=1048576`;
    const debugfs = (cmd: string) => execFileSync('debugfs', ['-R', cmd, fsAt], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const ssh = debugfs('ls /etc/ssh');
    assert.match(ssh, /sshd_config/);
    assert.doesNotMatch(ssh, /ssh_host_/);
    assert.equal(debugfs('cat /etc/machine-id'), '');
    fs.rmSync(raw);
  });

  test('clone, start, ssh in with the key, user-data ran, HTTP answers, a file survives stop/start, ACPI shutdown', async () => {
    const lib = await t.call('GET', `/libdrives/${LIB_DEBIAN}/`);
    assert.equal(lib.status, 200, JSON.stringify(lib.body));
    assert.equal(lib.body.name, 'Debian 12');
    assert.deepEqual([lib.body.os, lib.body.distribution, lib.body.version, lib.body.arch, lib.body.image_type], ['linux', 'debian', '12', '64', 'preinst']);
    const cl = await t.call('POST', `/libdrives/${LIB_DEBIAN}/action/?do=clone`, { name: 'my debian', size: 4 * GiB });
    assert.equal(cl.status, 202, JSON.stringify(cl.body));
    const drive = cl.body.objects[0].uuid as string;
    await waitFor(async () => (await t.call('GET', `/drives/${drive}/`)).body.status === 'unmounted', 120_000, 'the clone');

    const kp = await t.call('POST', '/keypairs/', { name: 'e2e key', public_key: fs.readFileSync(`${key}.pub`, 'utf8').trim() });
    assert.equal(kp.status, 201, JSON.stringify(kp.body));
    const userData = [
      '#cloud-config',
      'write_files:',
      '  - path: /var/www/index.html',
      '    content: "hello from user-data\\n"',
      'runcmd:',
      '  - [systemd-run, --unit=e2e-web, python3, -m, http.server, "80", --directory, /var/www]',
      '',
    ].join('\n');
    const created = await t.call('POST', '/servers/', {
      name: 'debian-e2e',
      cpu: 2000,
      smp: 2,
      mem: GiB,
      vnc_password: 'debpass1',
      context: true,
      pubkeys: [kp.body.objects[0].uuid],
      meta: { 'cloudinit-user-data': Buffer.from(userData).toString('base64'), base64_fields: 'cloudinit-user-data' },
      drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
      nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const uuid = created.body.objects[0].uuid as string;

    const t0 = Date.now();
    assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    const running = await waitForStatus(t, uuid, 'running', 60_000);
    const ip = running.runtime.nics[0].ip_v4?.uuid as string;
    assert.ok(ip?.startsWith('127.'), `a loopback address forwarded to the guest: ${JSON.stringify(running.runtime)}`);
    const banner = await sshBanner(ip, 400_000);
    const bannerMs = Date.now() - t0;
    assert.match(banner, /^SSH-2\.0-OpenSSH/);

    const first = await ssh(
      ip,
      'cloud-init status --wait >/dev/null; hostname; cat /var/lib/cloud/data/instance-id; cloud-init status; ' +
        'df -B1 --output=size / | tail -n1; sudo -n true && echo SUDO-OK; ls /etc/ssh/ssh_host_ed25519_key.pub',
    );
    const [hostname, instance, status, rootSize, sudo] = first.trim().split('\n');
    assert.equal(hostname, 'debian-e2e', 'the hostname is the server name');
    assert.equal(instance, uuid, 'the instance id is the server uuid');
    assert.equal(status, 'status: done', `cloud-init finished without errors: ${first}`);
    assert.ok(Number(rootSize) > 3.5 * GiB, `the root file system grew to the 4 GiB drive: ${rootSize}`);
    assert.equal(sudo, 'SUDO-OK');
    const doneMs = Date.now() - t0;

    const page = await waitFor(
      async () =>
        fetch(`http://${ip}/index.html`, { signal: AbortSignal.timeout(10_000) })
          .then((r) => r.text())
          .catch(() => null),
      60_000,
      'HTTP on port 80',
    );
    assert.equal(page, 'hello from user-data\n');

    const token = `persisted-${process.pid}-${Date.now()}`;
    await ssh(ip, `echo ${token} > /home/debian/persist.txt && sync`);
    assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202);
    await waitForStatus(t, uuid, 'stopped', 60_000);
    // opensigma itself restarts meanwhile: the drive is the clone's own file in the data dir, not a throw-away overlay.
    await t.running.close();
    restarted = await serve(t.config, { logger: false });
    const call = callAt(restarted.url);
    const t1 = Date.now();
    assert.equal((await call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    const again = await statusAt(call, uuid, 'running', 60_000);
    const ip2 = again.runtime.nics[0].ip_v4?.uuid as string;
    await sshBanner(ip2, 300_000);
    const rebootMs = Date.now() - t1;
    assert.equal((await ssh(ip2, 'cat /home/debian/persist.txt')).trim(), token, 'what the guest wrote survived stop, a restart of opensigma and start');

    const t2 = Date.now();
    assert.equal((await call('POST', `/servers/${uuid}/action/?do=shutdown`)).status, 202);
    await statusAt(call, uuid, 'stopped', 120_000);
    console.log(
      `# debian e2e: POST start -> SSH banner ${bannerMs} ms, cloud-init done ${doneMs} ms; second start -> SSH banner ${rebootMs} ms; ` +
        `ACPI shutdown -> stopped ${Date.now() - t2} ms`,
    );
  });
});
