import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'schemas');
const cache = new Map<string, unknown>();

/** The tastypie-style schema document CloudSigma serves at /{resource}/schema/. */
export function schemaDoc(name: string): unknown {
  if (!cache.has(name)) cache.set(name, JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')));
  return cache.get(name);
}
