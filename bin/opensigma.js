#!/usr/bin/env node
// Runs the TypeScript sources with no build step. They are bundled into plain JavaScript first (esbuild, a fraction of
// a second, redone whenever a source changes): a loader hook (tsx) would cost a second JavaScript thread and about
// 50 MB of memory for as long as the server runs. Where the bundle cannot be written, tsx runs the sources instead.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');

/** Every source file with its size and modification time, and whatever else the bundle depends on. */
function fingerprint(esbuildVersion) {
  const h = crypto.createHash('sha256').update(`${root}\0${esbuildVersion}\0${process.version}\0${fs.readFileSync(fileURLToPath(import.meta.url))}`);
  for (const f of fs.readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const p = path.join(f.parentPath ?? f.path, f.name);
    const st = fs.statSync(p);
    h.update(`\0${p}\0${st.size}\0${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Each module keeps its own import.meta.url, so paths found relative to a source file stay right in the bundle. */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => ({
      contents: fs.readFileSync(args.path, 'utf8').replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }));
  },
};

/** The bundled entry point, built if the sources changed since the last one; null if it cannot be built here. */
async function bundled() {
  const { version } = createRequire(import.meta.url)('esbuild/package.json');
  const cache = path.join(root, 'node_modules', '.cache', 'opensigma');
  const dir = path.join(cache, fingerprint(version));
  const entry = path.join(dir, 'main.js');
  if (fs.existsSync(entry)) {
    fs.promises.utimes(dir, new Date(), new Date()).catch(() => {}); // in use: not pruned
    return entry;
  }
  const esbuild = await import('esbuild');
  // Built aside and renamed into place: processes starting at the same time never see half a bundle.
  const tmp = `${dir}.${process.pid}.tmp`;
  try {
    await esbuild.build({
      entryPoints: [path.join(src, 'cli', 'main.ts')],
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node.split('.')[0]}`,
      packages: 'external',
      sourcemap: true, // used only under node --enable-source-maps
      logLevel: 'silent',
      plugins: [ownUrls],
    });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(entry)) throw e;
  } finally {
    await esbuild.stop();
  }
  // Bundles unused for an hour go (older sources, other checkouts sharing node_modules).
  const hourAgo = Date.now() - 3600_000;
  for (const old of fs.readdirSync(cache)) {
    const p = path.join(cache, old);
    if (p !== dir && fs.statSync(p).mtimeMs < hourAgo) fs.rmSync(p, { recursive: true, force: true });
  }
  return entry;
}

let entry = null;
try {
  entry = await bundled();
} catch (e) {
  process.stderr.write(`opensigma: running the sources through tsx (no bundle: ${e.message})\n`);
}
if (!entry) (await import('tsx/esm/api')).register();
const { main } = await import(entry ? pathToFileURL(entry).href : '../src/cli/main.ts');
await main(process.argv);
