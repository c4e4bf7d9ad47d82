/**
 * A guest's QEMU run outside opensigma with the very argv opensigma gave it: the baseline against which a start
 * through the API shows what opensigma adds. The argv is read from /proc while opensigma's QEMU runs (the driver
 * removes its run dir when the guest stops, so there is no record to read afterwards).
 *
 * The same argv alone does not boot the guest the same way: every frame the guest sends on a public NIC goes to a
 * socket the driver serves (DHCP is answered there, the rest passed on to QEMU), and cloud-init's datasource waits
 * for an answer on ttyS1. So the sockets are served here by the driver's own functions, with the context answered
 * by the running opensigma's context provider; without them the baseline would measure a guest without a network.
 */
import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { spawn } from 'node:child_process';
import type { ContextProvider } from '../src/hypervisor/driver.ts';
import { publicNet, runFiles } from '../src/hypervisor/qemu/cmdline.ts';
import { serveContext } from '../src/hypervisor/qemu/context.ts';
import { carryPublic, connectUnix, countMirror, zeroIo } from '../src/hypervisor/qemu/netio.ts';
import { QmpClient } from '../src/hypervisor/qemu/qmp.ts';

/** The argv (binary first) of the QEMU now running guest `uuid` of opensigma's data dir. */
export function guestArgv(dataDir: string, uuid: string): { pid: number; argv: string[] } {
  const pid = Number(fs.readFileSync(path.join(dataDir, 'qemu', uuid, 'qemu.pid'), 'utf8').trim());
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (argv.at(-1) === '') argv.pop();
  if (!argv.includes(`opensigma-${uuid}`)) throw new Error(`pid ${pid} is not the QEMU of ${uuid}`);
  return { pid, argv };
}

/**
 * The argv with the run dir and drive `driveUuid`'s image moved elsewhere, nothing else changed: opensigma's run dir
 * goes with its guest, and the baseline must boot a copy of the disk in the state opensigma's run found it.
 */
export function relocate(argv: string[], from: { runDir: string }, to: { runDir: string; driveUuid: string; image: string }): string[] {
  if (!argv.some((a) => a.includes(`${from.runDir}${path.sep}`))) throw new Error(`${from.runDir} is not in the argv`);
  let moved = false;
  const out = argv.map((a, i) => {
    if (argv[i - 1] === '-drive' && a.includes(`,id=drive-${to.driveUuid},`)) {
      moved = true;
      a = a.replace(/^file=(?:[^,]|,,)*,/, `file=${to.image.replace(/,/g, ',,')},`);
    }
    return a.split(`${from.runDir}${path.sep}`).join(`${to.runDir}${path.sep}`);
  });
  if (!moved) throw new Error(`no -drive of drive ${to.driveUuid} in the argv`);
  if (out.some((a) => a.includes(from.runDir))) throw new Error(`${from.runDir} left in the argv`);
  return out;
}

export interface RawGuest {
  pid: number;
  /** Date.now() just before the spawn. */
  spawnedAt: number;
  /** Where the argv forwards the guest's port 22. */
  sshHost: string;
  /** ACPI power button, then the time until QEMU exits (killed after `timeoutMs`). */
  powerdown(timeoutMs: number): Promise<number>;
  /** Kills QEMU if it still runs and removes its run dir. */
  close(): Promise<void>;
}

/** Options of `-netdev user` NICs: index, restrict mode and the address forwarded to the guest's SSH. */
function publicNics(argv: string[]): Array<{ index: number; egress: boolean; address: string }> {
  const out: Array<{ index: number; egress: boolean; address: string }> = [];
  argv.forEach((a, i) => {
    const m = argv[i - 1] === '-netdev' ? /^user,id=net(\d+),/.exec(a) : null;
    if (!m) return;
    const fwd = /hostfwd=tcp:([^:,]+):22-:22/.exec(a);
    out.push({ index: Number(m[1]), egress: /,restrict=off/.test(a), address: fwd?.[1] ?? '' });
  });
  return out;
}

/**
 * Spawns `argv` the way the driver does (detached, output to qemu.log in the run dir) and connects to its sockets
 * in the driver's order: QMP, the public NICs, the context port. Private NICs are left unserved: their stream
 * netdevs only lose their peers, which the Debian bench's guests do not have.
 */
export async function startRaw(argv: string[], runDir: string, uuid: string, context: ContextProvider): Promise<RawGuest> {
  const files = runFiles(runDir);
  const nics = publicNics(argv);
  const sshHost = nics.find((n) => n.address)?.address;
  if (!sshHost) throw new Error('the argv forwards no host port to the guest port 22');
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const logFd = fs.openSync(files.log, 'a');
  const spawnedAt = Date.now();
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  child.unref();
  let exitedAt: number | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exitedAt = Date.now();
      resolve();
    });
    child.once('error', () => resolve());
  });
  const sockets: net.Socket[] = [];
  let qmp: QmpClient | null = null;
  let stopContext: (() => void) | null = null;
  const close = async () => {
    stopContext?.();
    for (const s of sockets) s.destroy();
    qmp?.close();
    if (exitedAt === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  const died = exited.then(() => {
    throw new Error(`QEMU exited during start: ${fs.readFileSync(files.log, 'utf8').trim().split('\n').slice(-3).join(' | ')}`);
  });
  died.catch(() => {});
  try {
    qmp = await Promise.race([QmpClient.connect(files.qmp, { timeoutMs: 20_000 }), died]);
    for (const nic of nics) {
      const [sent, pass, reply, received] = await Promise.race([
        Promise.all((['sent', 'pass', 'reply', 'in'] as const).map((role) => connectUnix(files.publicNic(nic.index, role)))),
        died,
      ]);
      sockets.push(sent!, pass!, reply!, received!);
      const io = zeroIo();
      countMirror(received!, io, 'in');
      carryPublic(sent!, pass!, reply!, io, { ...publicNet(nic.index), egress: nic.egress }, () => ({ rules: undefined, address: nic.address }));
    }
    if (argv.some((a) => a.startsWith('socket,id=context,'))) {
      const s = await Promise.race([connectUnix(files.context), died]);
      sockets.push(s);
      stopContext = serveContext(
        s,
        (req) => context(uuid, req),
        (e) => process.stderr.write(`raw QEMU: context provider failed: ${e.message}\n`),
      );
    }
    const status = await Promise.race([qmp.execute<{ status: string }>('query-status'), died]);
    if (status.status !== 'running') throw new Error(`QEMU is ${status.status}, not running`);
  } catch (e) {
    await close();
    throw e;
  }
  const powerdown = async (timeoutMs: number) => {
    const t0 = Date.now();
    await qmp!.execute('system_powerdown');
    const timer = setTimeout(() => {
      try {
        if (child.pid && exitedAt === null) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
    }, timeoutMs);
    await exited;
    clearTimeout(timer);
    if (Date.now() - t0 >= timeoutMs) throw new Error(`raw QEMU did not power off within ${timeoutMs} ms`);
    return (exitedAt ?? Date.now()) - t0;
  };
  return { pid: child.pid!, spawnedAt, sshHost, powerdown, close };
}
