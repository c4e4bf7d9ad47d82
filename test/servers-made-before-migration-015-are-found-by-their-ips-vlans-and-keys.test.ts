import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Migrator } from 'kysely';
import { openDialect } from '../src/store/dialect/index.ts';
import { migrations } from '../src/store/migrate.ts';
import { Store } from '../src/store/index.ts';
import { databases, dropPostgres, freshPostgres } from './helpers/harness.ts';

// Migration 015 mirrors what server documents name (NIC IPs and VLANs, public keys) into server_references, which
// the "who uses this IP/VLAN/key" questions read instead of scanning documents. Servers written before it must be
// found the same way, so the migration fills the table from the documents; later writes keep it in step.
for (const db of databases()) {
  describe(`servers made before migration 015 are found by their IPs, VLANs and keys [${db.name}]`, () => {
    test('the migration fills server_references from the documents, and writes of a server rewrite its rows', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-migrate-015-'));
      const url = db.url ? await freshPostgres(db.url) : null;
      const dialect = await openDialect(url, dir);
      try {
        const migrator = new Migrator({ db: dialect.db, provider: { getMigrations: async () => migrations(dialect) }, allowUnorderedMigrations: true });
        assert.equal((await migrator.migrateTo('013_multi_node')).error, undefined);

        const t = new Date().toISOString();
        const vlan = crypto.randomUUID();
        const key = crypto.randomUUID();
        const nic = (mac: string, extra: Record<string, unknown>) => ({
          boot_order: null,
          ip_v4_conf: null,
          ip_v6_conf: null,
          mac,
          model: 'virtio',
          vlan: null,
          ...extra,
        });
        const server = async (uuid: string, nics: unknown[], pubkeys: string[]) =>
          dialect.db
            .insertInto('servers')
            .values({
              uuid,
              owner: 'u1',
              name: uuid,
              status: 'stopped',
              data: JSON.stringify({ uuid, name: uuid, nics, pubkeys }),
              created_at: t,
              updated_at: t,
            })
            .execute();
        const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
        await server(a, [nic('22:00:00:00:00:01', { ip_v4_conf: { conf: 'static', ip: '198.51.100.7' } }), nic('22:00:00:00:00:02', { vlan })], [key]);
        await server(b, [nic('22:00:00:00:00:03', { ip_v4_conf: { conf: 'dhcp', ip: null } }), nic('22:00:00:00:00:04', { vlan })], []);
        // The address's digits inside another field must not make c a user of it (what a LIKE scan had to rule out).
        await server(c, [nic('22:00:00:00:00:05', { ip_v4_conf: { conf: 'manual', ip: '198.51.100.70' } })], [`${key}x`]);

        assert.equal((await migrator.migrateToLatest()).error, undefined);
        const store = new Store(dialect);
        assert.deepEqual(await store.servers.referencing('ip', '198.51.100.7', ['static']), [a]);
        assert.deepEqual(await store.servers.referencing('ip', '198.51.100.70', ['static']), []);
        assert.deepEqual(await store.servers.referencing('vlan', vlan), [a, b]);
        assert.deepEqual(await store.servers.referencing('pubkey', key), [a]);
        assert.deepEqual([...(await store.servers.staticHolders())], [['198.51.100.7', a]]);

        // A server written after the migration: its old references go with the write, the new ones come with it.
        const doc = (await store.servers.get(a))!.doc;
        assert.ok(await store.servers.update({ ...doc, nics: [doc.nics[0]!], pubkeys: [] }));
        assert.deepEqual(await store.servers.referencing('vlan', vlan), [b]);
        assert.deepEqual(await store.servers.referencing('pubkey', key), []);
        assert.deepEqual(await store.servers.referencing('ip', '198.51.100.7', ['static']), [a]);
        await store.servers.delete(a);
        assert.deepEqual(await store.servers.referencing('ip', '198.51.100.7', ['static']), []);
      } finally {
        await dialect.close();
        if (url) await dropPostgres(url);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
