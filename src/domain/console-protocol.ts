import crypto from 'node:crypto';

/**
 * What the serial console and VNC endpoints, their clients and the web console's bridges agree on: no I/O, so every
 * layer that speaks them can use it.
 */

/** A password line with STX (\x02) in it asks the serial console for what the guest already wrote (the bridge does). */
export const WANTS_HISTORY = '\x02';

/** VNC authentication's DES key: the password's first 8 bytes, zero padded, each byte's bits reversed. */
export function vncKey(password: string): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    const b = key[i]!;
    let r = 0;
    for (let j = 0; j < 8; j++) r |= ((b >> j) & 1) << (7 - j);
    key[i] = r;
  }
  return key;
}

/** The client's answer to a challenge. Node 20 has no des-ecb; 3DES with one key repeated three times is DES. */
export function vncResponse(password: string, challenge: Buffer): Buffer {
  const k = vncKey(password);
  const c = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([k, k, k]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(challenge), c.final()]);
}
