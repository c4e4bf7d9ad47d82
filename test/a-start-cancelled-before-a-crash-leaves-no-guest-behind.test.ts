import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { minimalServer, waitFor } from './helpers/harness.ts';
import { CliServer, freePort } from './helpers/cli-process.ts';

/** The guests the sim driver keeps on its hosts (its state files are what survives the process). */
function simGuests(dataDir: string): Array<{ uuid: string }> {
  const dir = path.join(dataDir, 'sim');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Array<{ uuid: string }>);
}

describe('a start cancelled by a stop, then kill -9 of opensigma [sqlite, sim]', { timeout: 180000 }, () => {
  let dataDir: string;
  let cli: CliServer;
  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-cancelled-start-'));
    // Long sim phases, so that the stop and the kill land while the guest is still starting.
    cli = new CliServer(dataDir, await freePort(), { OPENSIGMA_SIM_DELAY_MS: '2500', OPENSIGMA_RECONCILE_MS: '500' });
    await cli.start();
  });
  after(async () => {
    await cli.kill9();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('after the restart the server is stopped, stays stopped, and no guest of it remains', async () => {
    const uuid = (await cli.call('POST', '/servers/', minimalServer('cancelled-start'))).body.objects[0].uuid as string;
    assert.equal((await cli.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await cli.call('GET', `/servers/${uuid}/`)).body.status, 'starting');
    assert.equal((await cli.call('POST', `/servers/${uuid}/action/?do=stop`)).status, 202, 'the stop is acknowledged while starting');
    await cli.kill9();
    await cli.start();

    await waitFor(async () => (await cli.call('GET', `/servers/${uuid}/`)).body.status === 'stopped', 60000, 'the server to end stopped');
    // Several reconciliation periods later it is still stopped, and the driver holds no guest of it.
    await new Promise((r) => setTimeout(r, 6000));
    const s = (await cli.call('GET', `/servers/${uuid}/`)).body;
    assert.equal(s.status, 'stopped');
    assert.equal(s.runtime, null);
    assert.deepEqual(
      simGuests(dataDir).filter((g) => g.uuid === uuid),
      [],
      'no guest is left behind',
    );
  });
});
