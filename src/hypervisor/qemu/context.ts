import type { Duplex } from 'node:stream';

/** A request of the CloudSigma guest protocol: `<\n` path `\n>`; a guest tty in cooked mode may send `\r\n`. */
const REQUEST = /<\r?\n([^<>\r\n]*)\r?\n>/;

/**
 * Serves the server-context protocol on a guest's second serial port: every request is answered with a fresh call
 * of `answer` (so a change of the server shows up at the next read), one at a time, in order. The reply is what
 * `answer` returns followed by EOT and a newline, unless it already carries its own EOT. Returns a stop function.
 */
export function serveContext(stream: Duplex, answer: (request: string) => Promise<string>, onError: (e: Error) => void): () => void {
  let buf = '';
  let chain = Promise.resolve();
  let stopped = false;
  stream.on('error', () => {});
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    let m: RegExpExecArray | null;
    while ((m = REQUEST.exec(buf))) {
      buf = buf.slice(m.index + m[0].length);
      const request = m[1]!;
      chain = chain.then(async () => {
        let reply: string;
        try {
          reply = await answer(request);
        } catch (e) {
          onError(e as Error);
          reply = '';
        }
        if (stopped) return;
        stream.write(Buffer.from(reply.includes('\x04') ? reply : `${reply}\x04\n`, 'utf8'));
      });
    }
    if (buf.length > 65536) buf = buf.slice(-4096); // garbage without a request in it
  });
  return () => {
    stopped = true;
    stream.destroy();
  };
}
