/**
 * The "Debian 12" library drive through the API (QEMU driver): time from POST start to the SSH banner at the address
 * the API shows, at first boot (cloud-init's first run: host keys, user, growpart) and at the next start, and from
 * POST shutdown (ACPI) to stopped.
 *
 *   node --import tsx bench/debian.ts [RUNS=1]
 *
 * Needs qemu-system-x86_64 and the image (library/images/debian-12 when up to date, else scripts/build-debian-image.sh
 * into the OS temp dir, as root). Prints a markdown table; `benchDebian()` returns the rows for a combined bench.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_DEBIAN = '6f0c1b0e-5d7a-4e43-9c58-0d3d1a2b7c12';
const ADMIN = { email: 'bench@example.com', password: 'bench-password' };

export interface DebianBenchRow {
  what: string;
  ms: number[];
}

function imageDir(): string {
  const script = path.join(REPO, 'scripts', 'build-debian-image.sh');
  const shipped = path.join(REPO, 'library', 'images', 'debian-12');
  if (spawnSync('sh', [script, '--check', shipped]).status === 0) return shipped;
  const recipe = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex').slice(0, 12);
  const dir = process.env.OPENSIGMA_DEBIAN_IMAGE ?? path.join(os.tmpdir(), `opensigma-debian-12-${recipe}`);
  if (spawnSync('sh', [script, dir], { stdio: 'inherit' }).status !== 0) throw new Error('cannot build the Debian image');
  return dir;
}

/** Resolves when host:22 sends an SSH banner. */
async function sshBanner(host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(22, host);
      let got = '';
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(5000, () => done(false));
      s.on('data', (c) => {
        got += c.toString('latin1');
        if (got.startsWith('SSH-')) done(true);
      });
      s.on('error', () => done(false));
      s.on('close', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no SSH banner at ${host} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function benchDebian(runs = 1): Promise<DebianBenchRow[]> {
  const images = imageDir();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-debian-'));
  const libDir = path.join(dataDir, 'library');
  fs.mkdirSync(path.join(libDir, 'images'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'library', 'debian-12.json'), path.join(libDir, 'debian-12.json'));
  fs.symlinkSync(images, path.join(libDir, 'images', 'debian-12'));
  // Pools of its own: the addresses are bound on this machine, where another opensigma may be running.
  const octet = 20 + (process.pid % 180);
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_DRIVER: 'qemu',
      OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
      OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
      OPENSIGMA_LOG_LEVEL: 'silent',
      OPENSIGMA_ACPI_TIMEOUT_S: '120',
      OPENSIGMA_IP_POOL: `127.${octet}.0.0/24`,
      OPENSIGMA_DHCP_POOL: `127.${octet}.16.0/20`,
    },
    {},
  );
  const running = await serve(config, { logger: false });
  const api = `${running.url}/api/2.0`;
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${api}${p}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const waitStatus = async (uuid: string, status: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await call('GET', `/servers/${uuid}/`)).body;
      if (s?.status === status) return s;
      if (Date.now() > deadline) throw new Error(`${uuid} never became ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const first: number[] = [];
  const next: number[] = [];
  const stops: number[] = [];
  try {
    const kp = await call('POST', '/keypairs/', { name: 'bench', algorithm_type: 'ed25519' });
    for (let i = 0; i < runs; i++) {
      const cl = await call('POST', `/libdrives/${LIB_DEBIAN}/action/?do=clone`, { name: `bench debian ${i}` });
      if (cl.status !== 202) throw new Error(`clone: ${JSON.stringify(cl.body)}`);
      const drive = cl.body.objects[0].uuid;
      const deadline = Date.now() + 120_000;
      while ((await call('GET', `/drives/${drive}/`)).body.status !== 'unmounted') {
        if (Date.now() > deadline) throw new Error('clone never finished');
        await new Promise((r) => setTimeout(r, 100));
      }
      const s = await call('POST', '/servers/', {
        name: `bench-debian-${i}`,
        cpu: 2000,
        smp: 2,
        mem: 2 ** 30,
        vnc_password: 'benchpw1',
        context: true,
        pubkeys: kp.status === 201 ? [kp.body.objects[0].uuid] : [],
        drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
        nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
      });
      const uuid = s.body.objects[0].uuid as string;
      for (const into of [first, next]) {
        const t0 = Date.now();
        await call('POST', `/servers/${uuid}/action/?do=start`);
        const r = await waitStatus(uuid, 'running', 120_000);
        await sshBanner(r.runtime.nics[0].ip_v4.uuid, 600_000);
        into.push(Date.now() - t0);
        const t1 = Date.now();
        await call('POST', `/servers/${uuid}/action/?do=shutdown`);
        await waitStatus(uuid, 'stopped', 180_000);
        stops.push(Date.now() - t1);
      }
    }
  } finally {
    const list = await call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await call('POST', `/servers/${s.uuid}/action/?do=stop`);
    await new Promise((r) => setTimeout(r, 2000));
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return [
    { what: 'POST start -> SSH banner, first boot of a clone (cloud-init first run)', ms: first },
    { what: 'POST start -> SSH banner, next start', ms: next },
    { what: 'POST shutdown (ACPI) -> stopped', ms: stops },
  ];
}

export function printDebianTable(rows: DebianBenchRow[]): void {
  const load = os.loadavg()[0]!.toFixed(1);
  const out = [`\n| Debian 12 drive, QEMU (TCG, tb-size=256), 1 GiB, 2 vCPUs, load average ${load} | min ms | max ms |`, '| --- | ---: | ---: |'];
  for (const r of rows) out.push(`| ${r.what} | ${Math.min(...r.ms)} | ${Math.max(...r.ms)} |`);
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printDebianTable(await benchDebian(Number(process.argv[2] ?? 1)));
}
