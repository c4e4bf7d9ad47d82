import crypto from 'node:crypto';

/**
 * The one source of every random value a client can see: uuids, MACs, VNC passwords, tokens, key material, fault
 * draws, placement ties. Unseeded it is the operating system's CSPRNG. With OPENSIGMA_SEED (the composition root
 * calls seedRandom) each purpose draws from its own AES-256-CTR keystream keyed by the seed and the purpose's name,
 * so a run that makes the same calls in the same order gets the same values, and a purpose drawn from the
 * background (a fault's dice) does not shift the uuids of the requests beside it.
 *
 * Values that only defend the process (password salts, VNC challenges, the event bus's node id) stay truly random
 * and do not come from here.
 */
let seed: string | null = null;
const streams = new Map<string, crypto.Cipher>();

/** Sets (or, with null, clears) the seed; setting the same seed again keeps the streams where they are. */
export function seedRandom(value: string | null): void {
  if (value === seed) return;
  seed = value;
  streams.clear();
}

export const isSeeded = (): boolean => seed !== null;

export type RandomPurpose = 'uuid' | 'mac' | 'password' | 'token' | 'key' | 'fault' | 'placement' | 'request';

export function randomBytes(n: number, purpose: RandomPurpose): Buffer {
  if (seed === null) return crypto.randomBytes(n);
  let s = streams.get(purpose);
  if (!s) {
    const key = crypto.createHash('sha256').update(`opensigma\0${seed}\0${purpose}`).digest();
    s = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    streams.set(purpose, s);
  }
  return s.update(Buffer.alloc(n));
}

/** A version 4 uuid. */
export function randomUuid(purpose: RandomPurpose = 'uuid'): string {
  if (seed === null) return crypto.randomUUID();
  const b = randomBytes(16, purpose);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A number in [0, 1), like Math.random. */
export function randomFraction(purpose: RandomPurpose): number {
  return randomBytes(6, purpose).readUIntBE(0, 6) / 2 ** 48;
}
