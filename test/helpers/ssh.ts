import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Resolves with the SSH banner once `host:22` answers with one; retries until `timeoutMs`. */
export async function sshBanner(host: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const banner = await new Promise<string | null>((resolve) => {
      const s = net.connect(22, host);
      let got = '';
      const done = (v: string | null) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(10_000, () => done(null));
      s.on('data', (c) => {
        got += c.toString('latin1');
        if (got.includes('\n')) done(got.split('\n')[0]!.trim());
      });
      s.on('error', () => done(null));
      s.on('close', () => done(got.startsWith('SSH-') ? got.trim() : null));
    });
    if (banner?.startsWith('SSH-')) return banner;
    if (Date.now() > deadline) throw new Error(`no SSH banner at ${host}:22 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Runs `command` as debian@host with the private key `key`; retried while the guest's sshd is not yet taking logins. */
export function sshAs(key: string): (host: string, command: string) => Promise<string> {
  return async (host, command) => {
    let last: Error | null = null;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        return await new Promise<string>((resolve, reject) =>
          execFile(
            'ssh',
            [
              '-i',
              key,
              '-o',
              'StrictHostKeyChecking=no',
              '-o',
              'UserKnownHostsFile=/dev/null',
              '-o',
              'BatchMode=yes',
              '-o',
              'LogLevel=ERROR',
              '-o',
              'ConnectTimeout=30',
              `debian@${host}`,
              command,
            ],
            { timeout: 240_000, encoding: 'utf8' },
            (err, stdout, stderr) => (err ? reject(new Error(`ssh exit ${String(err.code)}: ${command}: ${stderr}`)) : resolve(stdout)),
          ),
        );
      } catch (e) {
        last = e as Error;
        if (!last.message.startsWith('ssh exit 255')) throw last; // 255: ssh itself failed (sshd not ready yet)
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    throw last!;
  };
}

/**
 * A work dir for a test that boots Debian through the API: a library dir holding only the "Debian 12" drive (its
 * image linked from `imageDir`) and an SSH key pair without passphrase (`key`, `key.pub`).
 */
export function debianWorkDir(name: string, imageDir: string): { work: string; lib: string; key: string } {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `opensigma-${name}-`));
  const lib = path.join(work, 'library');
  fs.mkdirSync(path.join(lib, 'images'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'library', 'debian-12.json'), path.join(lib, 'debian-12.json'));
  fs.symlinkSync(imageDir, path.join(lib, 'images', 'debian-12'));
  const key = path.join(work, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@opensigma`, '-f', key]);
  return { work, lib, key };
}
