import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { BUILTIN_LIBRARY } from '../storage/library.ts';
import type { ContextProvider, HypervisorDriver } from './driver.ts';
import { SimDriver } from './sim/index.ts';

/**
 * The hosts one compute process runs. sim models several hosts in-process (so placement and availability groups
 * mean something on one machine); qemu is this machine.
 */
export async function createHosts(
  config: Config,
  context: ContextProvider,
  log?: (msg: string, fields?: Record<string, unknown>) => void,
): Promise<Map<string, HypervisorDriver>> {
  const hosts = new Map<string, HypervisorDriver>();
  if (config.driver === 'sim') {
    const n = Math.max(1, config.simHosts);
    for (let i = 0; i < n; i++) {
      const name = n === 1 ? config.hostName : `${config.hostName}-sim${i}`;
      hosts.set(
        name,
        new SimDriver({
          hostName: name,
          dataDir: config.dataDir,
          delayMs: config.simDelayMs,
          // Displays listen on loopback only: clients reach them through the compute node's VNC gateway, which throttles guesses.
          bindHost: '127.0.0.1',
          capacity: { cpu: config.hostCpuMhz ?? config.simHostCpuMhz, mem: config.hostMem ?? config.simHostMem },
        }),
      );
    }
    return hosts;
  }
  const { QemuDriver } = await import('./qemu/driver.ts');
  const { probeAccel } = await import('./qemu/probe.ts');
  // KVM only when a probe guest boots with it; the probe guest is the library's tiny guest.
  const imagesDir =
    [
      path.join(BUILTIN_LIBRARY, 'images'),
      path.join(config.dataDir, 'library', 'images'),
      ...(config.libraryDir ? [path.join(config.libraryDir, 'images')] : []),
    ].find((d) => fs.existsSync(path.join(d, 'vmlinuz'))) ?? null;
  const probe = await probeAccel({ imagesDir, log });
  log?.('accelerator chosen', { accel: probe.accel, reason: probe.reason });
  hosts.set(
    config.hostName,
    new QemuDriver({
      hostName: config.hostName,
      dataDir: config.dataDir,
      // VNC listens where the API does, so the vnc_url's host reaches it.
      // Displays listen on loopback only: clients reach them through the compute node's VNC gateway, which throttles guesses.
      bindHost: '127.0.0.1',
      // Unset = measured: host memory minus a reserve, CPU MHz x cores.
      capacity: { cpu: config.hostCpuMhz ?? undefined, mem: config.hostMem ?? undefined },
      context,
      guestEgress: config.guestEgress,
      accel: probe.accel,
      accelReason: probe.reason,
      log,
    }),
  );
  return hosts;
}
