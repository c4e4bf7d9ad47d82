import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ADMIN, databases, pgQuery, startServer, type TestServer } from './helpers/harness.ts';

const basic = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;
const CHUNK = 1024;
const CHUNKS = 96;
const ROUNDS = 6;
const PARALLEL = 8;

/** upload_chunks rows of these drives, read from the database itself (not through the API). */
async function chunkRows(t: TestServer, drives: string[]): Promise<Array<{ drive_uuid: string; chunk_number: number }>> {
  if (t.config.databaseUrl) return pgQuery(t.config.databaseUrl, 'SELECT drive_uuid, chunk_number FROM upload_chunks WHERE drive_uuid = ANY($1)', [drives]);
  const db = new Database(path.join(t.dataDir, 'opensigma.sqlite'), { readonly: true });
  try {
    return db.prepare(`SELECT drive_uuid, chunk_number FROM upload_chunks WHERE drive_uuid IN (${drives.map(() => '?').join(',')})`).all(...drives) as any;
  } finally {
    db.close();
  }
}

/** One chunk as raw bytes, as the ?do=upload_chunk link takes it. */
async function postChunk(t: TestServer, uuid: string, n: number): Promise<{ status: number; text: string }> {
  const res = await fetch(`${t.api}/drives/${uuid}/upload/?resumableChunkNumber=${n}&resumableChunkSize=${CHUNK}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/octet-stream', 'content-length': String(CHUNK) },
    body: Buffer.alloc(CHUNK, n) as unknown as BodyInit,
  });
  return { status: res.status, text: await res.text() };
}

// A chunk landing while its drive is deleted used to leave its row in upload_chunks (and could answer 500).
for (const db of databases()) {
  describe(`a resumable-upload chunk racing its drive's delete leaves no upload_chunks row [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t?.close());

    test('chunks posted while the drive is deleted: each answers 200 or 404, and no row of the drive remains', async () => {
      const drives: string[] = [];
      const answers: Array<{ status: number; text: string }> = [];
      for (let round = 0; round < ROUNDS; round++) {
        const init = await t.call('POST', '/initupload/', { objects: [{ name: `race-${round}`, media: 'disk', size: CHUNK * CHUNKS }] });
        assert.equal(init.status, 201, init.text);
        const uuid: string = init.body.objects[0].uuid;
        drives.push(uuid);
        // A client sending its chunks PARALLEL at a time, as upload tools do.
        let next = 1;
        let answered = 0;
        const sender = async () => {
          for (let n = next++; n <= CHUNKS; n = next++) {
            answers.push(await postChunk(t, uuid, n));
            answered++;
          }
        };
        const senders = Array.from({ length: PARALLEL }, sender);
        // Delete once the upload is under way, while chunks are still arriving.
        while (answered < 4 + 3 * round) await new Promise((r) => setTimeout(r, 1));
        const del = await t.call('DELETE', `/drives/${uuid}/`);
        assert.equal(del.status, 204, del.text);
        await Promise.all(senders);
      }
      const unexpected = answers.filter((a) => a.status !== 200 && a.status !== 201 && a.status !== 404);
      assert.deepEqual(unexpected, [], 'every chunk answer is 200/201 or 404');
      for (const a of answers.filter((x) => x.status === 404)) {
        const body = JSON.parse(a.text);
        assert.ok(Array.isArray(body) && body[0].error_type === 'notexist', a.text);
      }
      assert.ok(
        answers.some((a) => a.status === 404),
        'some chunks came after the delete',
      );
      assert.deepEqual(await chunkRows(t, drives), [], 'no upload_chunks row outlives its drive');
      for (const uuid of drives) assert.equal((await t.call('GET', `/drives/${uuid}/`)).status, 404);
    });
  });
}
