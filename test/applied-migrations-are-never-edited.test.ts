import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'src', 'store', 'migrations');
const GOLDEN = path.join(ROOT, 'test', 'golden', 'migrations.sha256');

/**
 * A migration runs once per database: once released, an edit of its text changes nothing on databases that ran it
 * and something on those that did not, so two installations drift apart. New migrations are added (with their line
 * in test/golden/migrations.sha256); released ones are never edited.
 */
test('the text of every released migration is what it was when it was released', () => {
  const pinned = new Map(
    fs
      .readFileSync(GOLDEN, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [hash, file] = l.split(/\s+/);
        return [file!, hash!] as const;
      }),
  );
  const files = fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.ts'))
    .sort();
  for (const f of files) {
    const hash = crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(DIR, f)))
      .digest('hex');
    assert.ok(pinned.has(f), `${f} is not pinned: add "${hash}  ${f}" to test/golden/migrations.sha256 when it is released`);
    assert.equal(hash, pinned.get(f), `${f} was edited after its release: write a new migration instead`);
  }
  for (const f of pinned.keys()) assert.ok(files.includes(f), `released migration ${f} was removed`);
});

test('every migration file is registered in store/migrate.ts, in the order of its number', () => {
  const registry = fs.readFileSync(path.join(ROOT, 'src', 'store', 'migrate.ts'), 'utf8');
  const names = [...registry.matchAll(/'(\d{3}_\w+)':/g)].map((m) => m[1]!);
  const files = fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
  assert.deepEqual(names, files);
});
