import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Migrator } from 'kysely';
import { openDialect } from '../src/store/dialect/index.ts';
import { migrateToLatest, migrations } from '../src/store/migrate.ts';
import { databases, dropPostgres, freshPostgres } from './helpers/harness.ts';

// Migration 009 gave IPs and VLANs held over after their subscription ended the status `ended`, which the sweep
// frees them by. Objects held over before it must be found by the same sweep, so the migration marks them.
for (const db of databases()) {
  describe(`migration 009 marks the IPs and VLANs already held over [${db.name}]`, () => {
    test('an object of an expired subscription becomes ended; one of an active subscription, or none, is left alone', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-migrate-009-'));
      const url = db.url ? await freshPostgres(db.url) : null;
      const dialect = await openDialect(url, dir);
      try {
        const migrator = new Migrator({ db: dialect.db, provider: { getMigrations: async () => migrations(dialect) }, allowUnorderedMigrations: true });
        const to008 = await migrator.migrateTo('008_credential_changes');
        assert.equal(to008.error, undefined);

        const t = new Date().toISOString();
        const subscription = async (status: string) =>
          Number(
            (
              await dialect.db
                .insertInto('subscriptions')
                .values({ uuid: crypto.randomUUID(), owner: 'u1', status, data: '{}', created_at: t, updated_at: t, resource: 'ip' })
                .returning('seq')
                .executeTakeFirstOrThrow()
            ).seq,
          );
        const expired = await subscription('expired');
        const active = await subscription('active');
        const object = (table: 'ips' | 'vlans', uuid: string, sub: number | null, extra: Record<string, unknown> = {}) =>
          dialect.db
            .insertInto(table)
            .values({ uuid, owner: 'u1', status: 'active', data: JSON.stringify({ uuid, subscription: sub }), created_at: t, updated_at: t, ...extra })
            .execute();
        await object('ips', '198.51.100.1', expired);
        await object('ips', '198.51.100.2', active);
        await object('ips', '198.51.100.3', null);
        await object('vlans', crypto.randomUUID(), expired, { slot: 1 });
        await object('vlans', crypto.randomUUID(), active, { slot: 2 });

        assert.deepEqual(
          await migrateToLatest(dialect),
          Object.keys(migrations(dialect)).filter((n) => n > '008_credential_changes'),
        );

        const statuses = async (table: 'ips' | 'vlans') =>
          (await dialect.db.selectFrom(table).select(['uuid', 'status', 'data']).orderBy('seq').execute()).map((r: any) => [
            JSON.parse(r.data).subscription,
            r.status,
          ]);
        assert.deepEqual(await statuses('ips'), [
          [expired, 'ended'],
          [active, 'active'],
          [null, 'active'],
        ]);
        assert.deepEqual(await statuses('vlans'), [
          [expired, 'ended'],
          [active, 'active'],
        ]);
      } finally {
        await dialect.close();
        if (url) await dropPostgres(url);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
