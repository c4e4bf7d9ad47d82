import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import { Prepared } from './prepared.ts';
import type { Db, DocTableName } from './schema.ts';

export interface AclDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
  grantees: Array<{ uuid: string; email: string | null }>;
  rules: string[];
  tags: string[];
}

/** One grant: an ACL of a resource's owner names the user and a tag the resource carries; `data` is the ACL's document. */
export interface GrantRow {
  user_uuid: string;
  resource_uuid: string;
  data: string;
}

/** Which grants to read: of one grantee, of one resource or of several (at least one of them). */
export interface GrantFilter {
  grantee?: string;
  resource?: string;
  resources?: string[];
}

/**
 * ACLs, with the join tables their grants are read through: acl_grantees (whom an ACL names) and acl_tags (the tags
 * it covers), written in the transaction that writes the ACL's document.
 */
export class AclTable extends DocumentTable<AclDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'acls', 'acls', (d) => ({ name: d.name }));
  }

  /** The grant queries by kind and filter columns: they run on every read of a resource, so each is compiled once. */
  private readonly prepared = new Map<string, Prepared<string[], GrantRow>>();

  /** Grants on resources of table `kind`, from ACLs of each resource's owner. */
  async grants(kind: DocTableName, opts: GrantFilter, trx: Db = this.dialect.db): Promise<GrantRow[]> {
    const resource = opts.resource ?? (opts.resources?.length === 1 ? opts.resources[0] : undefined);
    if (opts.resources && !resource) return grantsQuery(trx, kind).where('rt.resource_uuid', 'in', opts.resources).execute();
    const by: Array<['g.user_uuid' | 'rt.resource_uuid', string]> = [];
    if (opts.grantee) by.push(['g.user_uuid', opts.grantee]);
    if (resource) by.push(['rt.resource_uuid', resource]);
    const key = `${kind}:${by.map(([column]) => column).join(',')}`;
    let q = this.prepared.get(key);
    if (!q) {
      const columns = by.map(([column]) => column);
      q = new Prepared((db, ...values: string[]) => columns.reduce((b, column, i) => b.where(column, '=', values[i]!), grantsQuery(db, kind)));
      this.prepared.set(key, q);
    }
    return q.execute(trx, ...by.map(([, value]) => value));
  }

  /** Writes the join tables from an ACL's document. */
  async writeLinks(doc: AclDoc, trx: Db): Promise<void> {
    await this.dropLinks(doc.uuid, trx);
    if (doc.grantees.length)
      await trx
        .insertInto('acl_grantees')
        .values(doc.grantees.map((g) => ({ acl_uuid: doc.uuid, user_uuid: g.uuid })))
        .execute();
    if (doc.tags.length)
      await trx
        .insertInto('acl_tags')
        .values(doc.tags.map((t) => ({ acl_uuid: doc.uuid, tag_uuid: t })))
        .execute();
  }

  async dropLinks(aclUuid: string, trx: Db): Promise<void> {
    await trx.deleteFrom('acl_grantees').where('acl_uuid', '=', aclUuid).execute();
    await trx.deleteFrom('acl_tags').where('acl_uuid', '=', aclUuid).execute();
  }

  /** The ACLs that cover a tag. */
  async naming(tagUuid: string, trx: Db = this.dialect.db): Promise<string[]> {
    return (await trx.selectFrom('acl_tags').select('acl_uuid').where('tag_uuid', '=', tagUuid).execute()).map((r) => r.acl_uuid);
  }

  /** Takes a tag out of every ACL's join rows (its documents are the caller's to write). */
  async dropTag(tagUuid: string, trx: Db): Promise<void> {
    await trx.deleteFrom('acl_tags').where('tag_uuid', '=', tagUuid).execute();
  }
}

function grantsQuery(db: Db, kind: DocTableName) {
  return (
    db
      .selectFrom('acl_grantees as g')
      .innerJoin('acls', 'acls.uuid', 'g.acl_uuid')
      .innerJoin('acl_tags as t', 't.acl_uuid', 'g.acl_uuid')
      .innerJoin('resource_tags as rt', 'rt.tag_uuid', 't.tag_uuid')
      // Every document table has the uuid and owner joined on; Kysely cannot check a name chosen at run time.
      .innerJoin(`${kind} as r` as 'servers as r', 'r.uuid', 'rt.resource_uuid')
      .select(['g.user_uuid as user_uuid', 'rt.resource_uuid as resource_uuid', 'acls.data as data'])
      .where('rt.resource_type', '=', kind)
      .whereRef('r.owner', '=', 'acls.owner')
  );
}
