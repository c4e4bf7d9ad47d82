import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';

/**
 * What the control plane adds to a start: from the moment the client sends POST ?do=start to the moment the server
 * is running, with a hypervisor that takes no time (sim, OPENSIGMA_SIM_DELAY_MS=0). Measured in-process through the
 * event bus, so no polling interval hides in the figure; the request itself still goes over HTTP.
 */
export async function controlPlaneOverhead(starts: number): Promise<{ p50: number; p99: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-cp-'));
  const email = 'bench@example.com';
  const password = 'bench-password';
  const running = await serve(
    loadConfig(
      {
        OPENSIGMA_LISTEN: '127.0.0.1:0',
        OPENSIGMA_DATA: dataDir,
        OPENSIGMA_SIM_DELAY_MS: '0',
        OPENSIGMA_ADMIN_EMAIL: email,
        OPENSIGMA_ADMIN_PASSWORD: password,
        OPENSIGMA_LOG_LEVEL: 'warn',
      },
      {},
    ),
    { logger: false },
  );
  const auth = { authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`, 'content-type': 'application/json' };
  const api = `${running.url}/api/2.0`;
  try {
    const body = JSON.stringify({ objects: Array.from({ length: 20 }, (_, i) => ({ name: `cp-${i}`, cpu: 1000, mem: 536870912, vnc_password: 'benchpass' })) });
    const uuids: string[] = (await (await fetch(`${api}/servers/`, { method: 'POST', headers: auth, body })).json()).objects.map(
      (o: { uuid: string }) => o.uuid,
    );
    const waitFor = (uuid: string, action: string) =>
      new Promise<void>((resolve) => {
        const off = running.svc.bus.subscribe((e) => {
          if (e.uuid === uuid && e.action === action) {
            off();
            resolve();
          }
        });
      });
    const times: number[] = [];
    for (let i = 0; i < starts; i++) {
      const uuid = uuids[i % uuids.length]!;
      const started = waitFor(uuid, 'started');
      const t0 = performance.now();
      const r = await fetch(`${api}/servers/${uuid}/action/?do=start`, { method: 'POST', headers: auth });
      if (r.status !== 202) throw new Error(`start answered ${r.status}: ${await r.text()}`);
      await started;
      times.push(performance.now() - t0);
      const stopped = waitFor(uuid, 'stopped');
      await fetch(`${api}/servers/${uuid}/action/?do=stop`, { method: 'POST', headers: auth });
      await stopped;
    }
    times.sort((a, b) => a - b);
    const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!;
    return { p50: pct(50), p99: pct(99) };
  } finally {
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
