import crypto from 'node:crypto';

/**
 * The client side of VNC authentication (RFC 6143 7.2.2), written independently of the servers under test:
 * DES of the challenge with the password's first 8 bytes, each bit-reversed. Node 20 has no des-ecb;
 * des-ede3-ecb with the key repeated three times is the same cipher.
 */
export function vncAuthAnswer(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  for (let i = 0; i < Math.min(8, password.length); i++) {
    const bits = password.charCodeAt(i).toString(2).padStart(8, '0');
    key[i] = parseInt([...bits].reverse().join(''), 2);
  }
  const c = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(challenge), c.final()]);
}
