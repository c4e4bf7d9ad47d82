import crypto from 'node:crypto';
import { isSeeded, randomBytes } from './random.ts';
import { errors } from '../errors.ts';

/** SSH wire strings: a uint32 length, then the bytes. */
function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/** mpint: big-endian, with a leading zero when the top bit is set. */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function readSshString(buf: Buffer, at: number): [Buffer, number] {
  if (at + 4 > buf.length) throw new Error('truncated');
  const len = buf.readUInt32BE(at);
  if (at + 4 + len > buf.length) throw new Error('truncated');
  return [buf.subarray(at + 4, at + 4 + len), at + 4 + len];
}

const KEY_TYPES = [
  'ssh-rsa',
  'ssh-ed25519',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];

/** Checks an OpenSSH public key line ("ssh-ed25519 AAAA... comment") and returns it trimmed. */
export function readPublicKey(value: string, point = 'public_key'): string {
  const line = value.trim();
  const [type, b64] = line.split(/\s+/);
  const bad = () => errors.invalid(point, 'Not an OpenSSH public key ("ssh-ed25519 AAAA... comment")');
  if (!type || !b64 || !KEY_TYPES.includes(type) || !/^[A-Za-z0-9+/]+=*$/.test(b64)) throw bad();
  try {
    const [inner] = readSshString(Buffer.from(b64, 'base64'), 0);
    if (inner.toString() !== type) throw bad();
  } catch {
    throw bad();
  }
  return line;
}

/** OpenSSH's MD5 fingerprint of a public key line, as CloudSigma shows it. */
export function fingerprint(publicKey: string): string {
  const b64 = publicKey.trim().split(/\s+/)[1]!;
  return crypto.createHash('md5').update(Buffer.from(b64, 'base64')).digest('hex').match(/../g)!.join(':');
}

/** The OpenSSH public key line of a node:crypto public key (RSA or Ed25519). */
export function opensshPublicKey(key: crypto.KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  if (key.asymmetricKeyType === 'rsa') {
    const blob = Buffer.concat([sshString('ssh-rsa'), mpint(Buffer.from(jwk.e!, 'base64url')), mpint(Buffer.from(jwk.n!, 'base64url'))]);
    return `ssh-rsa ${blob.toString('base64')}`;
  }
  if (key.asymmetricKeyType === 'ed25519') {
    const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x!, 'base64url'))]);
    return `ssh-ed25519 ${blob.toString('base64')}`;
  }
  throw errors.invalid('private_key', `Unsupported key type ${key.asymmetricKeyType}`);
}

/** An Ed25519 private key in OpenSSH's own format (what ssh-keygen writes; PEM/PKCS#8 is not read by older OpenSSH). */
function opensshEd25519Private(key: crypto.KeyObject, comment = ''): string {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  const pub = Buffer.from(jwk.x!, 'base64url');
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4, 'key');
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(1);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), n, sshString(pubBlob), sshString(priv)]);
  const lines = body
    .toString('base64')
    .match(/.{1,70}/g)!
    .join('\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * A new key pair: RSA (PKCS#1 PEM, as CloudSigma returns) or Ed25519 (OpenSSH format). Generated on libuv's thread
 * pool: an RSA key costs ~100 ms of CPU, and a batch of them on the event loop stalled every other client.
 */
export async function generateKeyPair(algorithm: 'rsa' | 'ed25519'): Promise<{ public_key: string; private_key: string }> {
  if (isSeeded()) {
    const privateKey = algorithm === 'rsa' ? seededRsa() : seededEd25519();
    const publicKey = crypto.createPublicKey(privateKey);
    const private_key = algorithm === 'rsa' ? privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() : opensshEd25519Private(privateKey);
    return { public_key: opensshPublicKey(publicKey), private_key };
  }
  if (algorithm === 'rsa') {
    const { publicKey, privateKey } = await new Promise<{ publicKey: crypto.KeyObject; privateKey: crypto.KeyObject }>((resolve, reject) =>
      crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey }))),
    );
    return { public_key: opensshPublicKey(publicKey), private_key: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() };
  }
  const { publicKey, privateKey } = await new Promise<{ publicKey: crypto.KeyObject; privateKey: crypto.KeyObject }>((resolve, reject) =>
    crypto.generateKeyPair('ed25519', {}, (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey }))),
  );
  return { public_key: opensshPublicKey(publicKey), private_key: opensshEd25519Private(privateKey) };
}

/** An Ed25519 key is its 32-byte seed; Node reads one wrapped in the fixed PKCS#8 prefix of RFC 8410. */
function seededEd25519(): crypto.KeyObject {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), randomBytes(32, 'key')]);
  return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

const big = (b: Buffer): bigint => BigInt(`0x${b.toString('hex')}`);
const unbig = (n: bigint): string => {
  const h = n.toString(16);
  return Buffer.from(h.length % 2 ? `0${h}` : h, 'hex').toString('base64url');
};
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}
function seededPrime(bytes: number, e: bigint): bigint {
  for (;;) {
    const b = randomBytes(bytes, 'key');
    b[0]! |= 0xc0; // two top bits: the product of two such primes has all its bits
    b[bytes - 1]! |= 1;
    const p = big(b);
    // OpenSSL's test draws its own bases, but a prime passes whatever they are: the key found is the same.
    if ((p - 1n) % e !== 0n && crypto.checkPrimeSync(p)) return p;
  }
}
/**
 * A 2048-bit RSA key from the seeded stream. OpenSSL takes no seed, so with OPENSIGMA_SEED the primes are found
 * here from the seeded stream.
 */
function seededRsa(): crypto.KeyObject {
  const e = 65537n;
  const p = seededPrime(128, e);
  let q = seededPrime(128, e);
  while (q === p) q = seededPrime(128, e);
  const d = modInverse(e, (p - 1n) * (q - 1n));
  const jwk = {
    kty: 'RSA',
    n: unbig(p * q),
    e: unbig(e),
    d: unbig(d),
    p: unbig(p),
    q: unbig(q),
    dp: unbig(d % (p - 1n)),
    dq: unbig(d % (q - 1n)),
    qi: unbig(modInverse(q, p)),
  };
  return crypto.createPrivateKey({ key: jwk, format: 'jwk' });
}

/** The public key of a PEM private key, for a create that gives only the private half. */
export function publicKeyOfPrivate(pem: string): string {
  try {
    return opensshPublicKey(crypto.createPublicKey(pem));
  } catch {
    throw errors.invalid('private_key', 'Cannot read the private key: give public_key too, or a PEM private key');
  }
}
