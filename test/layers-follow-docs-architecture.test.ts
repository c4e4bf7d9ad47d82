import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');

/** The layer table of docs/architecture.md: layer -> the layers it may import. */
function rules(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const out = new Map<string, Set<string>>();
  for (const m of doc.matchAll(/^\| (\w+) \| ([\w, ]+) \|$/gm)) out.set(m[1]!, new Set(m[2]!.split(',').map((x) => x.trim())));
  return out;
}

function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** A module's layer: its folder under src/, or its own name for a file at the top. */
const layerOf = (file: string) => {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
};

/** The package table of docs/architecture.md: package -> the layers that may import it (the others may not). */
function packageRules(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const out = new Map<string, Set<string>>();
  for (const m of doc.matchAll(/^\| `([\w@./-]+)` \| ([\w, ]+) \|$/gm)) out.set(m[1]!, new Set(m[2]!.split(',').map((x) => x.trim())));
  return out;
}

/** Every import of a package (not a relative path) in src/: file and package name. */
function packageImports(): Array<{ file: string; pkg: string }> {
  const out: Array<{ file: string; pkg: string }> = [];
  for (const file of sources()) {
    const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    const visit = (node: ts.Node) => {
      let spec: string | undefined;
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
        spec = node.moduleSpecifier.text;
      else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(node.arguments[0]!))
        spec = (node.arguments[0] as ts.StringLiteral).text;
      if (spec && !spec.startsWith('.')) out.push({ file, pkg: spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]! });
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sources()) {
    const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    const visit = (node: ts.Node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        const spec = node.moduleSpecifier.text;
        if (spec.startsWith('.')) {
          const clause = ts.isImportDeclaration(node) ? node.importClause : undefined;
          const typeOnly = ts.isImportDeclaration(node)
            ? !!clause &&
              (clause.isTypeOnly ||
                (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.every((e) => e.isTypeOnly)))
            : node.isTypeOnly;
          out.push({ from: file, to: path.resolve(path.dirname(file), spec), typeOnly });
        }
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(node.arguments[0]!)) {
        const spec = (node.arguments[0] as ts.StringLiteral).text;
        if (spec.startsWith('.')) out.push({ from: file, to: path.resolve(path.dirname(file), spec), typeOnly: false });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

test('docs/architecture.md names a rule for every layer of src/', () => {
  const r = rules();
  const layers = new Set(sources().map(layerOf));
  for (const l of layers) assert.ok(r.has(l), `src/${l} has no row in docs/architecture.md`);
});

test('no module imports a layer docs/architecture.md does not allow it', () => {
  const r = rules();
  const wrong = edges()
    .filter((e) => !r.get(layerOf(e.from))?.has(layerOf(e.to)))
    .map((e) => `${path.relative(SRC, e.from)} imports ${path.relative(SRC, e.to)} (${layerOf(e.from)} -> ${layerOf(e.to)})`);
  assert.deepEqual(wrong, []);
});

test('a package docs/architecture.md keeps to some layers is imported by no other (type-only imports too)', () => {
  const r = packageRules();
  assert.ok(r.has('kysely'), 'docs/architecture.md has no row for kysely');
  const wrong = packageImports()
    .filter((i) => r.has(i.pkg) && !r.get(i.pkg)!.has(layerOf(i.file)))
    .map((i) => `${path.relative(SRC, i.file)} imports ${i.pkg} (only ${[...r.get(i.pkg)!].join(', ')} may)`);
  assert.deepEqual(wrong, []);
});

test('no modules import each other in a circle at run time', () => {
  const graph = new Map<string, string[]>();
  for (const e of edges()) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const walk = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(SRC, x)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) walk(t, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) walk(f, []);
  assert.deepEqual(circles, []);
});

test('no module outside store/ builds a query', () => {
  const builds = /\.(selectFrom|updateTable|insertInto|deleteFrom)\(/;
  const building = sources()
    .filter((f) => layerOf(f) !== 'store' && builds.test(fs.readFileSync(f, 'utf8')))
    .map((f) => path.relative(SRC, f).split(path.sep).join('/'));
  assert.deepEqual(building, [], 'these build queries outside the store: give their aggregate a repository method');
});
