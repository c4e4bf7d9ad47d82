/**
 * The resumable upload protocol of /initupload/ (docs/drives.md), as resumable.js numbers it: chunks from 1,
 * chunk N at (N-1)·S, max(1, ⌊size/S⌋) chunks, the last one taking the rest (so up to 2·S-1 bytes).
 */
export interface Chunk {
  number: number;
  offset: number;
  length: number;
}

export const CHUNK_SIZE = 1024 * 1024;

export function planChunks(size: number, chunkSize = CHUNK_SIZE): Chunk[] {
  if (!Number.isInteger(size) || size <= 0) throw new Error('Only a file that is not empty can be uploaded');
  const count = Math.max(1, Math.floor(size / chunkSize));
  const out: Chunk[] = [];
  for (let n = 1; n <= count; n++) {
    const offset = (n - 1) * chunkSize;
    out.push({ number: n, offset, length: n === count ? size - offset : chunkSize });
  }
  return out;
}

/** What a chunk is sent to: the raw-bytes form, the chunk named in the query. */
export function chunkUrl(api: string, drive: string, c: Chunk, chunkSize: number, total: number): string {
  const q = new URLSearchParams({ resumableChunkNumber: String(c.number), resumableChunkSize: String(chunkSize), resumableTotalSize: String(total) });
  return `${api}/drives/${drive}/upload/?${q}`;
}

export interface UploadIo {
  /** true when the server already has the chunk (a resumed upload skips it) */
  has(url: string): Promise<boolean>;
  send(url: string, bytes: Blob, onBytes: (sent: number) => void): Promise<void>;
}

/**
 * Sends a file's chunks one after another, skipping those the server has, and reports progress as a fraction of
 * the bytes (0..1). A failed chunk is tried again a few times before the upload gives up; it can then be resumed.
 */
export async function sendChunks(
  file: Blob,
  api: string,
  drive: string,
  io: UploadIo,
  onProgress: (fraction: number) => void,
  chunkSize = CHUNK_SIZE,
): Promise<void> {
  const chunks = planChunks(file.size, chunkSize);
  let done = 0;
  onProgress(0);
  for (const c of chunks) {
    const url = chunkUrl(api, drive, c, chunkSize, file.size);
    if (!(await io.has(url))) {
      for (let attempt = 1; ; attempt++) {
        try {
          await io.send(url, file.slice(c.offset, c.offset + c.length), (sent) => onProgress((done + Math.min(sent, c.length)) / file.size));
          break;
        } catch (e) {
          if (attempt >= 3) throw e;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    }
    done += c.length;
    onProgress(done / file.size);
  }
}
