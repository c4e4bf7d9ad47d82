import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The identity under which a compute process holds its hosts. It is kept in the data dir, so an agent that crashed
 * and comes back takes its hosts again at once, while an agent with another data dir must wait until they time out.
 * A pid file refuses a second live process on the same data dir.
 */
export function agentIdentity(dataDir: string, hostName: string): { id: string; release(): void } {
  fs.mkdirSync(dataDir, { recursive: true });
  const pidFile = path.join(dataDir, 'compute.pid');
  let holder = 0;
  try {
    holder = Number(fs.readFileSync(pidFile, 'utf8'));
  } catch {
    // no other process
  }
  if (holder && holder !== process.pid && alive(holder)) throw new Error(`another compute process (pid ${holder}) runs with the data dir ${dataDir}`);
  fs.writeFileSync(pidFile, String(process.pid));
  const idFile = path.join(dataDir, 'agent-id');
  if (!fs.existsSync(idFile)) fs.writeFileSync(idFile, crypto.randomUUID());
  const id = `${hostName}@${fs.readFileSync(idFile, 'utf8').trim()}`;
  return {
    id,
    release() {
      try {
        if (Number(fs.readFileSync(pidFile, 'utf8')) === process.pid) fs.rmSync(pidFile);
      } catch {
        // already gone
      }
    },
  };
}
