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
import { printRows, REPO, startQemuApi } from './qemu-api.ts';

const LIB_DEBIAN = '6f0c1b0e-5d7a-4e43-9c58-0d3d1a2b7c12';

export interface DebianBenchRow {
  what: string;
  ms: number[];
  unit?: string;
}

/** Resident memory of a guest's QEMU once the guest has settled (cloud-init done, nothing running). */
async function idleRssMiB(dataDir: string, uuid: string): Promise<number> {
  await new Promise((r) => setTimeout(r, 30_000));
  const pid = fs.readFileSync(path.join(dataDir, 'qemu', uuid, 'qemu.pid'), 'utf8').trim();
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round(kb / 1024);
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
  const { dataDir, call, waitStatus, clone, close } = await startQemuApi('debian', 'debian-12.json', images, 'images/debian-12', {
    OPENSIGMA_ACPI_TIMEOUT_S: '120',
  });
  const first: number[] = [];
  const next: number[] = [];
  const stops: number[] = [];
  const rss: number[] = [];
  try {
    const kp = await call('POST', '/keypairs/', { name: 'bench', algorithm_type: 'ed25519' });
    for (let i = 0; i < runs; i++) {
      const drive = await clone(LIB_DEBIAN, `bench debian ${i}`);
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
        if (into === next) rss.push(await idleRssMiB(dataDir, uuid));
        const t1 = Date.now();
        await call('POST', `/servers/${uuid}/action/?do=shutdown`);
        await waitStatus(uuid, 'stopped', 180_000);
        stops.push(Date.now() - t1);
      }
    }
  } finally {
    await close();
  }
  return [
    { what: 'POST start -> SSH banner, first boot of a clone (cloud-init first run)', ms: first },
    { what: 'POST start -> SSH banner, next start', ms: next },
    { what: 'POST shutdown (ACPI) -> stopped', ms: stops },
    { what: "host memory (RSS) of the idle guest's QEMU, 30 s after its SSH banner, MiB", ms: rss, unit: 'MiB' },
  ];
}

export function printDebianTable(rows: DebianBenchRow[]): void {
  printRows('Debian 12 drive, QEMU (TCG, tb-size=256), 1 GiB, 2 vCPUs (ms unless said)', rows);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printDebianTable(await benchDebian(Number(process.argv[2] ?? 1)));
}
