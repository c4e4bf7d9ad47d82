import { errors } from '../errors.ts';

/** The boundary of a multipart/form-data Content-Type, or null for any other type. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw errors.invalid(null, 'multipart/form-data without a boundary');
  return m[1] ?? m[2]!;
}

/**
 * The fields of a multipart/form-data body by name, each as its raw bytes (files and plain fields alike: resumable.js
 * clients send every field as a file part). Malformed bodies answer 400.
 */
export function parseMultipart(body: Buffer, boundary: string): Map<string, Buffer> {
  const delimiter = Buffer.from(`--${boundary}`);
  const fields = new Map<string, Buffer>();
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw errors.invalid(null, 'multipart body without its boundary');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return fields; // closing delimiter
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw errors.invalid(null, 'malformed multipart body');
    const headerEnd = body.indexOf('\r\n\r\n', pos + 2);
    if (headerEnd < 0) throw errors.invalid(null, 'malformed multipart part headers');
    const headers = body.subarray(pos + 2, headerEnd).toString('utf8');
    const name = /^content-disposition:[^\r\n]*?\bname="([^"]*)"/im.exec(headers)?.[1];
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) throw errors.invalid(null, 'multipart body ends inside a part');
    if (name !== undefined && !fields.has(name)) fields.set(name, body.subarray(headerEnd + 4, next));
    pos = next + 2;
  }
}
