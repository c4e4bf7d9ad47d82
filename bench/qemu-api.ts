/**
 * What the benches of real guests through the API share (bench/qemu.ts: the tiny guest; bench/debian.ts: the Debian
 * 12 drive): an opensigma with the QEMU driver on a data dir of its own, whose library holds one drive, called as
 * its administrator; and the rows they print.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Json } from '../src/cli/http.ts';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';
import { contextReply } from '../src/commands/server-context.ts';
import type { ContextProvider } from '../src/hypervisor/driver.ts';
import { basicCaller } from '../test/helpers/harness.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN = { email: 'bench@example.com', password: 'bench-password' };

export interface BenchRow {
  what: string;
  ms: number[];
}

export type Call = (method: string, p: string, body?: unknown) => Promise<{ status: number; body: Json }>;

export interface QemuApi {
  dataDir: string;
  /** Where the drives' images are (`<uuid>.img`, `<uuid>.qcow2`). */
  storageDir: string;
  /** What this opensigma answers a guest's server-context request with, for a QEMU run outside it (bench/raw-qemu.ts). */
  context: ContextProvider;
  call: Call;
  waitStatus(uuid: string, status: string, timeoutMs: number): Promise<Json>;
  /** Clones a library drive and waits until the copy is done; its uuid. */
  clone(libdrive: string, name: string): Promise<string>;
  /** Stops every server still on, then opensigma, and removes the data dir. */
  close(): Promise<void>;
}

/**
 * Starts opensigma (QEMU driver) whose library is the drive `json` (a file of library/) with its images at
 * `images` (linked as `imagesLink` in the library dir). Address pools of its own: the addresses are bound on this
 * machine, where another opensigma may be running.
 */
export async function startQemuApi(name: string, json: string, images: string, imagesLink: string, env: Record<string, string> = {}): Promise<QemuApi> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `opensigma-bench-${name}-`));
  const libDir = path.join(dataDir, 'library');
  fs.mkdirSync(path.dirname(path.join(libDir, imagesLink)), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'library', json), path.join(libDir, json));
  fs.symlinkSync(images, path.join(libDir, imagesLink));
  const octet = 20 + (process.pid % 180);
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_DRIVER: 'qemu',
      OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
      OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
      OPENSIGMA_LOG_LEVEL: 'silent',
      OPENSIGMA_IP_POOL: `127.${octet}.0.0/24`,
      OPENSIGMA_DHCP_POOL: `127.${octet}.16.0/20`,
      ...env,
    },
    {},
  );
  const running = await serve(config, { logger: false });
  const api = `${running.url}/api/2.0`;
  const call: Call = basicCaller(api, ADMIN);
  const waitStatus = async (uuid: string, status: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await call('GET', `/servers/${uuid}/`)).body;
      if (s?.status === status) return s;
      if (Date.now() > deadline) throw new Error(`${uuid} never became ${status}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const clone = async (libdrive: string, driveName: string) => {
    const cl = await call('POST', `/libdrives/${libdrive}/action/?do=clone`, { name: driveName });
    if (cl.status !== 202) throw new Error(`clone: ${JSON.stringify(cl.body)}`);
    const drive = cl.body.objects[0].uuid as string;
    const deadline = Date.now() + 120_000;
    while ((await call('GET', `/drives/${drive}/`)).body.status !== 'unmounted') {
      if (Date.now() > deadline) throw new Error('clone never finished');
      await new Promise((r) => setTimeout(r, 50));
    }
    return drive;
  };
  const close = async () => {
    const list = await call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await call('POST', `/servers/${s.uuid}/action/?do=stop`);
    await new Promise((r) => setTimeout(r, 2000));
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const context: ContextProvider = (uuid, request) => contextReply(running.svc, uuid, request);
  return { dataDir, storageDir: config.storageDir, context, call, waitStatus, clone, close };
}

/** The rows as a markdown table under `title` (the load average of the moment added), then `notes`. */
export function printRows(title: string, rows: BenchRow[], notes: string[] = []): void {
  const load = os.loadavg()[0]!.toFixed(1);
  const out = [`\n| ${title}, load average ${load} | min | max |`, '| --- | ---: | ---: |'];
  for (const r of rows) out.push(`| ${r.what} | ${Math.min(...r.ms)} | ${Math.max(...r.ms)} |`);
  if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
  process.stdout.write(out.join('\n') + '\n');
}
