import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { SETTINGS } from '../src/config.ts';
import { buildProgram } from '../src/cli/main.ts';
import { CliUser } from './helpers/cli-client.ts';

/** Every command with its full name and what its --help prints (the same text, built in this process). */
function helps(): Array<{ name: string; text: string; leaf: boolean }> {
  const out: Array<{ name: string; text: string; leaf: boolean }> = [];
  const visit = (cmd: Command, prefix: string) => {
    let text = '';
    cmd.configureOutput({ writeOut: (s) => (text += s), getOutHelpWidth: () => 80 });
    cmd.outputHelp();
    const subs = cmd.commands.filter((c) => c.name() !== 'help');
    out.push({ name: prefix, text, leaf: subs.length === 0 });
    for (const c of subs) visit(c, `${prefix} ${c.name()}`.trim());
  };
  visit(buildProgram(), '');
  return out;
}

const SERVER_SIDE = new Set(['serve', 'agent', 'doctor']);
const settingFlag = (flag: string) => flag.split(' ')[0]!;

test("each command's --help is under 40 lines, shows an example, and lists only its own options", () => {
  const all = helps();
  assert.ok(all.length > 60, `${all.length} commands`);
  for (const { name, text, leaf } of all) {
    const lines = text.trimEnd().split('\n').length;
    assert.ok(lines < 40, `opensigma ${name} --help: ${lines} lines`);
    if (leaf || name === '') assert.match(text, /\nExamples?:\n {2}\$ .*opensigma /, `opensigma ${name} --help shows an example`);
    if (SERVER_SIDE.has(name)) continue;
    const allowed = /^(user|token|migrate|hosts|backup)\b/.test(name) ? ['--data', '--database-url'] : [];
    // state works on the data and storage directories as well as the database, and resets to the admin
    if (/^state\b/.test(name)) allowed.push('--data', '--database-url', '--storage-dir', '--remote-snapshot-dir', '--admin-email');
    const options = /\nOptions:\n([\s\S]*?)(\n\n|$)/.exec(text)?.[1] ?? '';
    for (const s of SETTINGS) {
      const flag = settingFlag(s.flag);
      if (!allowed.includes(flag)) assert.doesNotMatch(options, new RegExp(`^ +${flag}\\b`, 'm'), `opensigma ${name} --help lists the server setting ${flag}`);
    }
  }
  const serve = all.find((h) => h.name === 'serve')!.text;
  assert.match(serve, /--listen/);
  assert.match(serve, /--ephemeral/);
  assert.match(serve, /more settings: --help-all/);
});

test('--version, --help as a process, completion scripts for bash and zsh', async () => {
  const u = new CliUser();
  try {
    const v = await u.run(['--version']);
    assert.deepEqual(v, { code: 0, stdout: `${JSON.parse(fs.readFileSync('package.json', 'utf8')).version}\n`, stderr: '' });
    const h = await u.run(['servers', 'start', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^Usage: opensigma servers start \[options\] <name-or-uuid\.\.\.>/);
    assert.match(h.stdout, /--wait/);

    const bash = await u.ok('completion', 'bash');
    const file = path.join(u.home, 'completion.bash');
    fs.writeFileSync(file, bash);
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _opensigma; printf '%s\\n' "\${COMPREPLY[@]}"`,
          '-',
          file,
        ],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
    assert.deepEqual(complete('opensigma', 'serv'), ['serve', 'servers', 'server']);
    assert.deepEqual(complete('opensigma', 'servers', 'st'), ['start', 'stop']);
    assert.ok(complete('opensigma', 'drives', 'upload', '--').includes('--chunk-size'));
    const zsh = await u.ok('completion', 'zsh');
    assert.match(zsh, /bashcompinit/);
    assert.ok(zsh.includes(bash));
    const fish = await u.run(['completion', 'fish']);
    assert.deepEqual([fish.code, fish.stderr], [2, 'opensigma: no completion for fish: bash or zsh\n']);
  } finally {
    u.cleanup();
  }
});

test('user and token refuse a data directory without an opensigma database, unless --create', async () => {
  const u = new CliUser();
  try {
    const typo = path.join(u.home, 'dtaa');
    fs.mkdirSync(typo);
    const add = await u.run(['user', 'add', 'a@example.com', '--password', 'secret-1', '--data', typo]);
    assert.equal(add.code, 2);
    assert.equal(add.stderr, `opensigma: ${typo} holds no opensigma database (check --data or OPENSIGMA_DATA; --create makes a new one)\n`);
    const tok = await u.run(['token', 'create', 'a@example.com'], { env: { OPENSIGMA_DATA: path.join(u.home, 'nowhere') } });
    assert.equal(tok.code, 2);
    assert.deepEqual(fs.readdirSync(typo), [], 'nothing made');
    assert.equal(fs.existsSync(path.join(u.home, 'nowhere')), false);

    const made = await u.run(['user', 'add', 'a@example.com', '--password', 'secret-1', '--data', typo, '--create']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^created user a@example\.com/);
    const t = await u.run(['token', 'create', 'a@example.com', '--data', typo]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^\S{20,}\n$/);
  } finally {
    u.cleanup();
  }
});
