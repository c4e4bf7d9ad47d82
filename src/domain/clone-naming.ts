export type CloneNaming = 'NONE' | 'COUNTER' | 'DATE' | 'TIMESTAMP';

const pad = (n: number) => String(n).padStart(2, '0');
const dateOf = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
const stampOf = (d: Date) => `${dateOf(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

function counter(name: string): string {
  const m = /^(.*_)(\d+)$/.exec(name);
  return m ? `${m[1]}${Number(m[2]) + 1}` : `${name}_1`;
}

/** The name of a clone under the profile's clone_naming strategy. */
export function nameClone(name: string, strategy: CloneNaming, now = new Date()): string {
  switch (strategy) {
    case 'NONE':
      return name;
    case 'COUNTER':
      return counter(name);
    case 'DATE': {
      const today = dateOf(now);
      if (name.endsWith(`-${today}`)) return counter(name);
      const m = /^(.*)-\d{4}-\d{2}-\d{2}$/.exec(name);
      return `${m ? m[1] : name}-${today}`;
    }
    case 'TIMESTAMP': {
      const stamp = stampOf(now);
      if (name.endsWith(`-${stamp}`)) return counter(name);
      const m = /^(.*)-\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.exec(name);
      return `${m ? m[1] : name}-${stamp}`;
    }
  }
}

/** The clone's name for this user, by their profile's strategy. */
export async function cloneName<T>(
  svc: { cloneNamingOf(user: string, trx?: T): Promise<CloneNaming> },
  user: string,
  name: string,
  _kind: string,
  trx?: T,
): Promise<string> {
  return nameClone(name, await svc.cloneNamingOf(user, trx));
}
