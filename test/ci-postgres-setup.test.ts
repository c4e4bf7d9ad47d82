import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../.ci/postgres');

/**
 * .ci/postgres on a machine where PostgreSQL is installed but no cluster exists, then online, then stopped. It runs
 * in private mount and network namespaces, over empty /etc/postgresql, /var/lib/postgresql and /var/run/postgresql,
 * so the machine's own cluster is neither seen nor touched. Needs root, unshare and Debian's PostgreSQL.
 */
const inNamespace = `
set -eu
ip link set lo up
for d in /etc/postgresql /var/lib/postgresql /var/run/postgresql /var/log/postgresql; do mount -t tmpfs tmpfs $d; done
chown postgres:postgres /etc/postgresql /var/lib/postgresql /var/run/postgresql; chmod 2775 /var/run/postgresql
chown root:postgres /var/log/postgresql; chmod 1775 /var/log/postgresql
stop() { for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do pg_ctlcluster \${c%/*} \${c#*/} stop 2>/dev/null || true; done; }
trap stop EXIT
[ -z "$(pg_lsclusters -h)" ]
for state in none online stopped; do
  [ $state = stopped ] && stop
  url=$("$1")
  echo "$state $(psql "$url" -Atc 'select 1') $url"
done
`;

const usable = () =>
  process.getuid?.() === 0 && fs.readdirSync('/usr/lib/postgresql', { withFileTypes: true }).length > 0 && spawnSync('unshare', ['-mn', 'true']).status === 0;

test(
  '.ci/postgres creates a cluster when none exists, and starts a stopped one',
  {
    skip: (() => {
      try {
        return usable() ? false : 'needs root, unshare and PostgreSQL';
      } catch {
        return 'needs root, unshare and PostgreSQL';
      }
    })(),
  },
  () => {
    const r = spawnSync('unshare', ['-mn', 'bash', '-c', inNamespace, 'ns', SCRIPT], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const url = 'postgres://postgres:opensigma@127.0.0.1:5432/postgres';
    assert.deepEqual(r.stdout.trim().split('\n'), [`none 1 ${url}`, `online 1 ${url}`, `stopped 1 ${url}`]);
  },
);
