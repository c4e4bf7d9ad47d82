/**
 * The "Debian 12" library drive through the API (QEMU driver): time from POST start to the SSH banner at the address
 * the API shows, at first boot (cloud-init's first run: host keys, user, growpart) and at the next start, and from
 * POST shutdown (ACPI) to stopped; then two fresh clones started by two POSTs at once. Beside each start, its
 * baseline from the same run: the argv opensigma gave that start's QEMU, spawned outside opensigma on a copy of the
 * disk as that start found it (bench/raw-qemu.ts), timed from spawn to SSH banner; the ratio is what opensigma adds.
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
import { guestArgv, relocate, startRaw, type RawGuest } from './raw-qemu.ts';
import { findImage } from '../src/storage/images.ts';
import type { ContextProvider } from '../src/hypervisor/driver.ts';

const LIB_DEBIAN = '6f0c1b0e-5d7a-4e43-9c58-0d3d1a2b7c12';

export interface DebianBenchRow {
  what: string;
  ms: number[];
  unit?: string;
}

/** Resident memory of a guest's QEMU once the guest has settled (cloud-init done, nothing running). */
async function idleRssMiB(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 30_000));
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/** A sparse copy (the clone is a sparse raw image of the drive's full size, mostly holes). */
function copyImage(from: string, to: string): void {
  const r = spawnSync('cp', ['--sparse=always', '--reflink=auto', from, to], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cannot copy ${from}`);
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

interface Seen {
  pid: number;
  argv: string[];
  context: string;
}

const ratio = (a: number[], b: number[]) => a.map((x, i) => Number((x / b[i]!).toFixed(2)));

export async function benchDebian(runs = 1): Promise<DebianBenchRow[]> {
  const images = imageDir();
  const { dataDir, storageDir, context, call, waitStatus, clone, close } = await startQemuApi('debian', 'debian-12.json', images, 'images/debian-12', {
    OPENSIGMA_ACPI_TIMEOUT_S: '120',
  });
  const first: number[] = [];
  const next: number[] = [];
  const stops: number[] = [];
  const rss: number[] = [];
  const rawFirst: number[] = [];
  const rawNext: number[] = [];
  const rawStops: number[] = [];
  const rawRss: number[] = [];
  const pair: number[] = [];
  // Outside <dataDir>/qemu/: the driver kills QEMUs of that dir it does not manage.
  const rawDir = path.join(dataDir, 'raw-qemu');
  fs.mkdirSync(rawDir);
  const raws = new Set<RawGuest>();
  try {
    const kp = await call('POST', '/keypairs/', { name: 'bench', algorithm_type: 'ed25519' });
    const newServer = async (name: string) => {
      const drive = await clone(LIB_DEBIAN, name);
      const s = await call('POST', '/servers/', {
        name,
        cpu: 2000,
        smp: 2,
        mem: 2 ** 30,
        vnc_password: 'benchpw1',
        context: true,
        pubkeys: kp.status === 201 ? [kp.body.objects[0].uuid] : [],
        drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
        nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
      });
      return { uuid: s.body.objects[0].uuid as string, drive };
    };
    /** POST start -> SSH banner at the address the API shows, from `t0`. */
    const startToBanner = async (uuid: string, t0: number) => {
      await call('POST', `/servers/${uuid}/action/?do=start`);
      const r = await waitStatus(uuid, 'running', 120_000);
      await sshBanner(r.runtime.nics[0].ip_v4.uuid, 600_000);
      return Date.now() - t0;
    };
    const shutdown = async (uuid: string) => {
      const t1 = Date.now();
      await call('POST', `/servers/${uuid}/action/?do=shutdown`);
      await waitStatus(uuid, 'stopped', 180_000);
      return Date.now() - t1;
    };
    /** What a running start of opensigma's was given: its QEMU's argv and the whole server context. */
    const seen = async (uuid: string, image: string): Promise<Seen> => {
      const { pid, argv } = guestArgv(dataDir, uuid);
      const file = argv
        .find((a, i) => argv[i - 1] === '-drive' && a.startsWith('file='))
        ?.match(/^file=((?:[^,]|,,)*),/)?.[1]
        ?.replace(/,,/g, ',');
      if (!file || fs.realpathSync(file) !== fs.realpathSync(image)) throw new Error(`the guest boots ${file}, not the copied ${image}`);
      return { pid, argv, context: await context(uuid, '') };
    };
    /** Spawn -> SSH banner of `argv` outside opensigma, on `image` in place of the drive's own. */
    const rawBoot = async (uuid: string, drive: string, seen: Seen, image: string, into: number[]) => {
      const runDir = path.join(rawDir, uuid);
      // The whole context as opensigma's guest could read it: with the server stopped its DHCP lease (the NIC's
      // address in the context) is gone. Any other key is answered live.
      const asSeen: ContextProvider = (u, request) => (u === uuid && request === '' ? Promise.resolve(seen.context) : context(u, request));
      const argv = relocate(seen.argv, { runDir: path.join(dataDir, 'qemu', uuid) }, { runDir, driveUuid: drive, image });
      const g = await startRaw(argv, runDir, uuid, asSeen);
      raws.add(g);
      try {
        await sshBanner(g.sshHost, 600_000);
        into.push(Date.now() - g.spawnedAt);
        if (into === rawNext) rawRss.push(await idleRssMiB(g.pid));
        rawStops.push(await g.powerdown(180_000));
      } finally {
        await g.close();
        raws.delete(g);
        fs.rmSync(image, { force: true });
      }
    };

    for (let i = 0; i < runs; i++) {
      const { uuid, drive } = await newServer(`bench-debian-${i}`);
      const image = findImage(storageDir, drive);
      if (image?.format !== 'raw') throw new Error(`clone ${drive} has no raw image in ${storageDir}`);
      // The baseline boots copies of the disk as opensigma's first boot and next start found it: cloud-init's first
      // run (host keys, growpart) is most of a first boot, so a disk booted once would make the raw first boot cheap.
      const pristine = path.join(rawDir, `${uuid}-first-boot.img`);
      const bootedOnce = path.join(rawDir, `${uuid}-next-start.img`);
      copyImage(image.path, pristine);
      first.push(await startToBanner(uuid, Date.now()));
      // The argv of each start, read while it runs: the driver builds it anew (address, VNC display) at every start.
      const seenFirst = await seen(uuid, image.path);
      stops.push(await shutdown(uuid));
      copyImage(image.path, bootedOnce);
      next.push(await startToBanner(uuid, Date.now()));
      const seenNext = await seen(uuid, image.path);
      rss.push(await idleRssMiB(seenNext.pid));
      stops.push(await shutdown(uuid));
      // opensigma keeps running with the server stopped: its context provider answers the raw guest's ttyS1.
      await rawBoot(uuid, drive, seenNext, bootedOnce, rawNext);
      await rawBoot(uuid, drive, seenFirst, pristine, rawFirst);
    }

    // Two fresh clones started by two POSTs sent together: both first boots share the host's cores.
    const both = [await newServer('bench-debian-pair-0'), await newServer('bench-debian-pair-1')];
    const t0 = Date.now();
    pair.push(...(await Promise.all(both.map((s) => startToBanner(s.uuid, t0)))));
    await Promise.all(both.map((s) => shutdown(s.uuid)));
  } finally {
    for (const g of raws) await g.close();
    await close();
  }
  return [
    { what: 'POST start -> SSH banner, first boot of a clone (cloud-init first run)', ms: first },
    { what: 'raw QEMU, same command line: spawn -> SSH banner, first boot (a copy of the same clone)', ms: rawFirst },
    { what: 'opensigma overhead (ratio), first boot: POST start -> banner / raw spawn -> banner', ms: ratio(first, rawFirst), unit: 'ratio' },
    { what: 'POST start -> SSH banner, next start', ms: next },
    { what: 'raw QEMU, same command line: spawn -> SSH banner, next start (a copy of the disk booted once)', ms: rawNext },
    { what: 'opensigma overhead (ratio), next start: POST start -> banner / raw spawn -> banner', ms: ratio(next, rawNext), unit: 'ratio' },
    { what: '2 guests at once: POST start -> SSH banner, first boot of 2 clones (min, max = the slower)', ms: pair },
    { what: 'POST shutdown (ACPI) -> stopped', ms: stops },
    { what: 'raw QEMU: system_powerdown (ACPI) -> exit', ms: rawStops },
    { what: "host memory (RSS) of the idle guest's QEMU, 30 s after its SSH banner, MiB", ms: rss, unit: 'MiB' },
    { what: 'raw QEMU: host memory (RSS) of the idle guest, 30 s after its SSH banner, MiB', ms: rawRss, unit: 'MiB' },
  ];
}

export function printDebianTable(rows: DebianBenchRow[]): void {
  const row = (prefix: string) => rows.find((r) => r.what.startsWith(prefix))?.ms ?? [];
  const worst = (ms: number[]) => (ms.length ? Math.max(...ms) : NaN);
  const nextStart = worst(row('POST start -> SSH banner, next start'));
  const firstBoot = worst(row('POST start -> SSH banner, first boot'));
  const overheads = [...row('opensigma overhead (ratio), next start'), ...row('opensigma overhead (ratio), first boot')];
  const slower = worst(row('2 guests at once'));
  const notes = [
    `${nextStart <= 45_000 ? 'met' : 'MISSED'}: SSH answers within 45 s of POST start for one guest (next start ${nextStart} ms; first boot ${firstBoot} ms)`,
    `${worst(overheads) <= 1.05 ? 'met' : 'MISSED'}: opensigma overhead <= 1.05 (${overheads.join(', ')}: next start, then first boot)`,
    `2 guests at once: the slower took ${(slower / firstBoot).toFixed(2)}x the first boot of one guest alone (${os.cpus().length} CPUs)`,
  ];
  printRows('Debian 12 drive, QEMU (TCG, tb-size=256), 1 GiB, 2 vCPUs (ms unless said)', rows, notes);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printDebianTable(await benchDebian(Number(process.argv[2] ?? 1)));
}
