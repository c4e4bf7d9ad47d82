import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { Config } from './config.ts';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that say nothing a reader needs. */
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

const value = (v: unknown): string => (typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v));

/** One JSON log line as a person reads it: `12:00:01.234 WARN message key=value ...`, the error's stack below. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(Number(o.time ?? Date.now())).toISOString().slice(11, 23);
  const level = (LEVELS[Number(o.level)] ?? String(o.level)).padEnd(5);
  const err = o.err as { stack?: string; message?: string } | undefined;
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k) && k !== 'err')
    .map(([k, v]) => `${k}=${value(v)}`);
  const head = [time, level, String(o.msg ?? ''), ...fields].filter(Boolean).join(' ');
  return err ? `${head}\n    ${(err.stack ?? err.message ?? JSON.stringify(err)).split('\n').join('\n    ')}` : head;
}

/** A stream that turns pino's JSON lines into pretty ones on standard output. */
function prettyStream(out: NodeJS.WritableStream = process.stdout): Writable {
  let buf = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      buf += chunk.toString();
      let i: number;
      let text = '';
      while ((i = buf.indexOf('\n')) >= 0) {
        text += `${prettyLine(buf.slice(0, i))}\n`;
        buf = buf.slice(i + 1);
      }
      if (text) out.write(text);
      done();
    },
  });
}

/** The process's logger: JSON lines (the default, for machines) or `--log-format pretty` (for people). */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, silent = false): Logger {
  const level = silent ? 'silent' : config.logLevel;
  return config.logFormat === 'pretty' ? pino({ level }, prettyStream()) : pino({ level });
}
