import { Store } from '../src/store/index.ts';
import { loadCapabilities } from '../src/domain/capabilities.ts';
import { applyServerInput } from '../src/domain/server-definition.ts';

/**
 * Puts `count` more servers into the store of `dataDir`, owned by `email` (created when missing), straight through the
 * store API in large transactions: the benchmark needs big tables, not the time it takes to fill them over HTTP.
 */
export async function seedServers(dataDir: string, email: string, password: string, count: number): Promise<string[]> {
  const store = await Store.open(null, dataDir);
  try {
    const user = (await store.users.byEmail(email)) ?? (await store.users.create(email, password));
    const caps = loadCapabilities(dataDir);
    const uuids: string[] = [];
    const batch = 5000;
    for (let done = 0; done < count; done += batch) {
      await store.transaction(async (trx) => {
        for (let i = done; i < Math.min(count, done + batch); i++) {
          const def = applyServerInput(
            null,
            { name: `bench-${i}`, cpu: 1000, mem: 536870912, vnc_password: 'benchpass', meta: { i: String(i) }, nics: [{ ip_v4_conf: { conf: 'dhcp' } }] },
            caps,
          );
          await store.servers.insert(user.uuid, def, 'stopped', trx);
          uuids.push(def.uuid);
        }
      });
    }
    return uuids;
  } finally {
    await store.close();
  }
}
