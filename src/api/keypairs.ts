import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ref } from '../domain/refs.ts';
import { fingerprint, generateKeyPair, publicKeyOfPrivate, readPublicKey } from '../domain/ssh-keys.ts';
import type { Stored } from '../store/documents.ts';
import type { KeypairDoc } from '../store/index.ts';
import { created, noContent, objectBody, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec, type Query } from './lists.ts';
import { AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import type { Db } from '../store/schema.ts';

const { status: _status, ...FILTERS } = STANDARD_FILTERS;
const LIST: ListSpec = { filters: FILTERS, ordering: ['uuid', 'name'] };

export function renderKeypair(k: Stored<KeypairDoc>) {
  return {
    fingerprint: k.doc.fingerprint,
    grantees: [],
    meta: k.doc.meta,
    name: k.doc.name,
    permissions: [],
    private_key: k.doc.private_key || null,
    public_key: k.doc.public_key,
    resource_uri: ref('keypairs', k.uuid).resource_uri,
    tags: [],
    uuid: k.uuid,
  };
}

/** /pubkeys/ shows the same keys without their private half (it needs no second factor on the real API). */
export function renderPubkey(k: Stored<KeypairDoc>) {
  const { private_key: _p, ...rest } = renderKeypair(k);
  return { ...rest, has_private_key: !!k.doc.private_key, resource_uri: ref('pubkeys', k.uuid).resource_uri };
}

/** A create item: a given public key (with or without its private key), a private key alone, or algorithm_type to generate. */
async function readKeypair(b: Record<string, unknown>): Promise<KeypairDoc> {
  if (b.name === undefined || b.name === null) throw errors.required('name');
  const name = readString(b.name, 'name', { nonEmpty: true, max: 1024 });
  const meta = b.meta === undefined ? {} : readMeta(b.meta, 'meta');
  const given = (v: unknown) => v !== undefined && v !== null && v !== '';
  let public_key: string;
  let private_key = '';
  if (given(b.public_key) || given(b.private_key)) {
    if (given(b.algorithm_type)) throw errors.invalid('algorithm_type', 'algorithm_type generates a key pair: give it without public_key or private_key');
    if (given(b.private_key)) private_key = readString(b.private_key, 'private_key', { max: 16384 });
    public_key = given(b.public_key) ? readPublicKey(readString(b.public_key, 'public_key', { max: 16384 })) : publicKeyOfPrivate(private_key);
  } else {
    // libcloud creates with a name only: generate RSA then, as CloudSigma does.
    const alg = b.algorithm_type === undefined || b.algorithm_type === null ? 'rsa' : b.algorithm_type;
    if (alg !== 'rsa' && alg !== 'ed25519') throw errors.invalid('algorithm_type', 'algorithm_type must be rsa or ed25519');
    ({ public_key, private_key } = await generateKeyPair(alg));
  }
  return { uuid: newUuid(), name, meta, public_key, private_key, fingerprint: fingerprint(public_key) };
}

/** Servers that list a key lose it when it is deleted (their context simply stops offering it). */
async function detachFromServers(svc: Services, uuid: string, trx: Db): Promise<string[]> {
  const changed: string[] = [];
  for (const s of await svc.store.servers.getMany(await svc.store.servers.referencing('pubkey', uuid, undefined, trx), trx)) {
    if (!s.doc.pubkeys.includes(uuid)) continue;
    await svc.store.servers.update({ ...s.doc, pubkeys: s.doc.pubkeys.filter((p) => p !== uuid) }, {}, trx);
    changed.push(s.uuid);
  }
  return changed;
}

/** /keypairs/ (full, with private keys) and /pubkeys/ (read-only mirror). */
export function keypairRoutes(r: Routes, svc: Services): void {
  const load = async (user: string, uuid: string, trx?: Db) => {
    const k = await svc.store.keypairs.get(uuid, trx);
    if (!k || k.owner !== user) throw errors.notFound('Keypair');
    return k;
  };
  const lister =
    (render: (k: Stored<KeypairDoc>) => object) =>
    async ({ actor, query }: { actor: { user: string }; query: Query }) => {
      const q = parseListQuery(query, LIST);
      const { total, items } = await svc.store.keypairs.list({ ...q, owner: actor.user });
      return envelope(
        items.map((k) => selectFields(render(k), query)),
        q,
        total,
      );
    };

  for (const [base, render, tag] of [
    ['keypairs', renderKeypair, 'keypairs'],
    ['pubkeys', renderPubkey, 'pubkeys'],
  ] as const) {
    const tags = [tag];
    r.get(`/${base}/`, { auth: 'user', tags, summary: `List ${base}`, schema: { querystring: ListQuerystring } }, lister(render));
    r.get(`/${base}/detail/`, { auth: 'user', tags, summary: `List ${base}`, schema: { querystring: ListQuerystring } }, lister(render));
    r.get(`/${base}/:uuid/`, { auth: 'user', tags, summary: `Get one of ${base}`, schema: { params: UuidParams } }, async ({ actor, params, query }) =>
      selectFields(render(await load(actor.user, params.uuid!)), query),
    );
  }
  const tags = ['keypairs'];

  r.post(
    '/keypairs/',
    {
      auth: 'user',
      tags,
      summary: 'Create keypairs: from a public key (and private key), or generated (algorithm_type rsa|ed25519)',
      schema: { body: CreateBody },
    },
    async ({ actor, body }) => {
      // One at a time: each generation takes a thread of libuv's pool, which file I/O and password checks share.
      const docs: KeypairDoc[] = [];
      for (const item of createItems(body)) docs.push(await readKeypair(item));
      const made = await svc.store.transaction(async (trx) => {
        for (const d of docs) await svc.store.keypairs.insert(actor.user, d, '', trx);
        return svc.store.keypairs.getMany(
          docs.map((d) => d.uuid),
          trx,
        );
      });
      for (const k of made) svc.publish('keypairs', k.uuid, actor.user, 'created');
      return created({ objects: made.map(renderKeypair) });
    },
  );

  r.put(
    '/keypairs/:uuid/',
    { auth: 'user', tags, summary: 'Edit the name and meta of a keypair (the keys themselves are read-only)', schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => {
      const b = objectBody(body);
      const k = await load(actor.user, params.uuid!);
      const doc = { ...k.doc };
      if (b.name !== undefined) doc.name = readString(b.name, 'name', { nonEmpty: true, max: 1024 });
      if (b.meta !== undefined) doc.meta = readMeta(b.meta, 'meta');
      await svc.store.keypairs.update(doc);
      svc.publish('keypairs', k.uuid, actor.user, 'updated');
      return renderKeypair((await svc.store.keypairs.get(k.uuid))!);
    },
  );

  r.delete(
    '/keypairs/:uuid/',
    { auth: 'user', tags, summary: 'Delete a keypair (servers listing it lose it from pubkeys)', schema: { params: UuidParams } },
    async ({ actor, params }) => {
      const servers = await svc.store.transaction(async (trx) => {
        await load(actor.user, params.uuid!, trx);
        const changed = await detachFromServers(svc, params.uuid!, trx);
        await svc.store.keypairs.delete(params.uuid!, trx);
        return changed;
      });
      svc.publish('keypairs', params.uuid!, actor.user, 'deleted');
      for (const s of servers) svc.publish('servers', s, actor.user, 'updated');
      return noContent();
    },
  );
}
