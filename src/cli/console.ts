import net from 'node:net';
import { CliError } from './errors.ts';

const ESCAPE = 0x1d; // Ctrl-]

/**
 * Joins this terminal to a csconsole://HOST:PORT serial console: types the password at its prompt, then passes bytes
 * both ways, the terminal in raw mode so that Ctrl-C and friends reach the guest. Ctrl-] then q leaves.
 */
export async function joinConsole(consoleUrl: string, password: string, name: string): Promise<void> {
  const m = /^csconsole:\/\/(\[[^\]]+\]|[^:/]+):(\d+)/.exec(consoleUrl ?? '');
  if (!m) throw new CliError(`the API gave no console address (${consoleUrl})`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const sock = net.connect(Number(m[2]), host);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e) => reject(new CliError(`cannot reach the console at ${host}:${m[2]}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
  });
  process.stderr.write(`Connected to the console of ${name}. To leave: Ctrl-] then q.\r\n`);
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  let prompt = '';
  let typed = false;
  let escaped = false;
  let ended = '';
  let left = false;

  const done = new Promise<void>((resolve) => {
    const finish = () => {
      if (raw) stdin.setRawMode(false);
      stdin.off('data', onKeys);
      stdin.pause();
      sock.destroy();
      resolve();
    };
    const onKeys = (chunk: Buffer) => {
      const out: number[] = [];
      for (const b of chunk) {
        if (escaped) {
          escaped = false;
          if (b === 0x71 || b === 0x51 || b === 0x2e) {
            process.stderr.write('\r\n[left the console]\r\n');
            left = true;
            finish();
            return;
          }
          out.push(ESCAPE); // anything else: the Ctrl-] was meant for the guest
          if (b === ESCAPE) continue;
        }
        if (b === ESCAPE) escaped = true;
        else out.push(b);
      }
      if (out.length) sock.write(Buffer.from(out));
    };
    sock.on('data', (d: Buffer) => {
      process.stdout.write(d);
      if (!typed) {
        prompt += d.toString('latin1');
        if (/Password:\s*$/.test(prompt)) {
          typed = true;
          sock.write(`${password}\n`);
        }
      } else ended = (ended + d.toString('latin1')).slice(-200);
    });
    sock.once('close', () => {
      if (!left) process.stderr.write('\r\n[the console closed]\r\n');
      finish();
    });
    sock.on('error', () => {});
    stdin.on('data', onKeys);
    stdin.resume();
  });
  await done;
  if (/wrong password|another client/i.test(ended + prompt)) process.exitCode = 1;
}
