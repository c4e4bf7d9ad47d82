// Times `state save` and `state load` of 1,000 servers and a 100 MiB drive, on SQLite (and PostgreSQL given
// OPENSIGMA_BENCH_POSTGRES_URL, a database of its own). Run: node --import tsx bench/states.ts
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';
import { loadState, saveState, statePlaces } from '../src/store/states.ts';

const auth = `Basic ${Buffer.from('bench@example.com:bench-password').toString('base64')}`;

async function one(databaseUrl?: string): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-states-'));
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_ADMIN_EMAIL: 'bench@example.com',
      OPENSIGMA_ADMIN_PASSWORD: 'bench-password',
      OPENSIGMA_LOG_LEVEL: 'silent',
      OPENSIGMA_QUOTA_SERVERS: '0',
      ...(databaseUrl ? { OPENSIGMA_DATABASE_URL: databaseUrl } : {}),
    },
    {},
  );
  const running = await serve(config, { logger: false });
  try {
    const api = `${running.url}/api/2.0`;
    for (let i = 0; i < 10; i++) {
      const objects = Array.from({ length: 100 }, (_, j) => ({ name: `s${i * 100 + j}`, cpu: 1000, mem: 536870912, vnc_password: 'benchbench' }));
      const r = await fetch(`${api}/servers/`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ objects }),
      });
      if (r.status !== 201) throw new Error(`create servers: ${r.status} ${await r.text()}`);
    }
    const up = await fetch(`${api}/drives/upload/`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/octet-stream' },
      body: crypto.randomBytes(100 * 2 ** 20),
    });
    if (up.status !== 201) throw new Error(`upload: ${up.status}`);
    const places = statePlaces(config);
    let t = performance.now();
    const s = await saveState(running.svc.store, places, 'bench');
    const save = (performance.now() - t) / 1000;
    t = performance.now();
    await loadState(running.svc.store, places, 'bench');
    const load = (performance.now() - t) / 1000;
    console.log(
      `${databaseUrl ? 'postgres' : 'sqlite'}: 1000 servers + 100 MiB drive (${s.rows} rows, ${(s.bytes / 2 ** 20).toFixed(0)} MiB): save ${save.toFixed(2)} s, load ${load.toFixed(2)} s`,
    );
  } finally {
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await one();
if (process.env.OPENSIGMA_BENCH_POSTGRES_URL) await one(process.env.OPENSIGMA_BENCH_POSTGRES_URL);
