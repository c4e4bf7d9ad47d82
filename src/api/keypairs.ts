import crypto from 'node:crypto';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { Stored } from '../store/documents.ts';
import type { KeypairDoc } from '../store/index.ts';
import { created, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS } from './lists.ts';
import { CreateBody, ListQuerystring } from './schemas.ts';

const tags = ['keypairs'];

/** OpenSSH's MD5 fingerprint of a public key line, as CloudSigma shows it. */
export function fingerprint(publicKey: string): string {
  const b64 = publicKey.trim().split(/\s+/)[1];
  if (!b64 || !/^[A-Za-z0-9+/=]+$/.test(b64)) throw errors.invalid('public_key', 'Not an OpenSSH public key ("ssh-ed25519 AAAA... comment")');
  const md5 = crypto.createHash('md5').update(Buffer.from(b64, 'base64')).digest('hex');
  return md5.match(/../g)!.join(':');
}

export function renderKeypair(k: Stored<KeypairDoc>, withPrivate = true) {
  return {
    fingerprint: k.doc.fingerprint,
    meta: k.doc.meta,
    name: k.doc.name,
    owner: ownerRef(k.owner),
    permissions: [],
    ...(withPrivate ? { private_key: k.doc.private_key } : {}),
    public_key: k.doc.public_key,
    resource_uri: ref('keypairs', k.uuid).resource_uri,
    uuid: k.uuid,
  };
}

/** The minimum of keypairs that servers reference: create from a public key, and list. */
export function keypairRoutes(r: Routes, svc: Services): void {
  r.get('/keypairs/', { tags, summary: 'List keypairs', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, { filters: STANDARD_FILTERS, ordering: ['name'] });
    const { total, items } = await svc.store.keypairs.list({ ...q, owner: actor.user });
    return envelope(items.map((k) => selectFields(renderKeypair(k), query)), q, total);
  });

  r.post('/keypairs/', { tags, summary: 'Create keypairs', schema: { body: CreateBody } }, async ({ actor, body }) => {
    const docs: KeypairDoc[] = createItems(body).map((b) => {
      if (b.name === undefined || b.name === null) throw errors.required('name');
      if (!b.public_key) throw errors.required('public_key');
      const public_key = readString(b.public_key, 'public_key').trim();
      return {
        uuid: newUuid(),
        name: readString(b.name, 'name', { nonEmpty: true }),
        meta: b.meta === undefined ? {} : readMeta(b.meta, 'meta'),
        public_key,
        private_key: b.private_key ? readString(b.private_key, 'private_key') : '',
        fingerprint: fingerprint(public_key),
      };
    });
    const made = await svc.store.transaction(async (trx) => {
      for (const d of docs) await svc.store.keypairs.insert(actor.user, d, '', trx);
      return svc.store.keypairs.getMany(docs.map((d) => d.uuid), trx);
    });
    return created({ objects: made.map((k) => renderKeypair(k)) });
  });
}
