// Times `state save` and `state load` of 10,000 servers and 1 GiB of drives (the sizes; `--quick`: 1,000 and
// 100 MiB), on SQLite (and PostgreSQL given OPENSIGMA_BENCH_POSTGRES_URL, a database of its own).
// Run alone: node --import tsx bench/states.ts; `npm run bench` runs it with --cli.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';
import { loadState, saveState, statePlaces } from '../src/store/states.ts';

const auth = `Basic ${Buffer.from('bench@example.com:bench-password').toString('base64')}`;

const quick = process.argv.includes('--quick');
const SERVERS = quick ? 1000 : 10_000;
const BYTES = quick ? 100 * 2 ** 20 : 2 ** 30;

export async function statesBench(databaseUrl?: string): Promise<string> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-states-'));
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_ADMIN_EMAIL: 'bench@example.com',
      OPENSIGMA_ADMIN_PASSWORD: 'bench-password',
      OPENSIGMA_LOG_LEVEL: 'silent',
      OPENSIGMA_QUOTA_SERVERS: '0',
      OPENSIGMA_QUOTA_DRIVE_BYTES: '0',
      ...(databaseUrl ? { OPENSIGMA_DATABASE_URL: databaseUrl } : {}),
    },
    {},
  );
  const running = await serve(config, { logger: false });
  try {
    const api = `${running.url}/api/2.0`;
    for (let i = 0; i < SERVERS / 100; i++) {
      const objects = Array.from({ length: 100 }, (_, j) => ({ name: `s${i * 100 + j}`, cpu: 1000, mem: 536870912, vnc_password: 'benchbench' }));
      const r = await fetch(`${api}/servers/`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ objects }),
      });
      if (r.status !== 201) throw new Error(`create servers: ${r.status} ${await r.text()}`);
    }
    // Streamed from a file by curl: a 1 GiB body in this process's memory would be measured with the rest.
    const file = path.join(dataDir, 'drive.raw');
    const fd = fs.openSync(file, 'w');
    const block = Buffer.alloc(2 ** 24);
    for (let done = 0; done < BYTES; done += block.length) {
      for (let i = 0; i < block.length; i += 65536) globalThis.crypto.getRandomValues(block.subarray(i, i + 65536));
      fs.writeSync(fd, block, 0, Math.min(block.length, BYTES - done));
    }
    fs.closeSync(fd);
    // Not spawnSync: the server runs in this process and must go on answering while curl sends.
    await promisify(execFile)('curl', ['-sf', '-o', '/dev/null', '-u', 'bench@example.com:bench-password', '-T', file, `${api}/drives/upload/`]);
    fs.rmSync(file);
    const places = statePlaces(config);
    let t = performance.now();
    const s = await saveState(running.svc.store, places, 'bench');
    const save = (performance.now() - t) / 1000;
    t = performance.now();
    await loadState(running.svc.store, places, 'bench');
    const load = (performance.now() - t) / 1000;
    // The baseline: copying the same drive bytes with cp, what a save cannot beat.
    t = performance.now();
    spawnSync('cp', ['-r', config.storageDir, path.join(dataDir, 'cp-baseline')]);
    const cp = (performance.now() - t) / 1000;
    return `${databaseUrl ? 'postgres' : 'sqlite'}: ${SERVERS} servers + ${(BYTES / 2 ** 20).toFixed(0)} MiB drive (${s.rows} rows, ${(s.bytes / 2 ** 20).toFixed(0)} MiB): save ${save.toFixed(2)} s, load ${load.toFixed(2)} s; baseline cp -r of the drives ${cp.toFixed(2)} s (save/cp ${(save / cp).toFixed(1)}, load/cp ${(load / cp).toFixed(1)})`;
  } finally {
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runStatesBench(): Promise<string[]> {
  const out = [await statesBench()];
  if (process.env.OPENSIGMA_BENCH_POSTGRES_URL) out.push(await statesBench(process.env.OPENSIGMA_BENCH_POSTGRES_URL));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) for (const line of await runStatesBench()) console.log(line);
