import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every OPENSIGMA_ setting the code reads is documented in the README', () => {
  const docs = fs.existsSync('docs') ? fs.readdirSync('docs', { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.md')) : [];
  const readme = fs.readFileSync('README.md', 'utf8') + docs.map((e) => fs.readFileSync(path.join('docs', e.name), 'utf8')).join('\n');
  const used = new Set<string>();
  for (const f of sources('src')) for (const m of fs.readFileSync(f, 'utf8').matchAll(/OPENSIGMA_[A-Z0-9_]+/g)) used.add(m[0]);
  const missing = [...used].filter((v) => !readme.includes(v)).sort();
  assert.deepEqual(missing, [], `settings used in src but not documented: ${missing.join(', ')}`);
});
