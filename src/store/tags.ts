import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import type { Db } from './schema.ts';

export interface TagDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
}

/** Tags, with resource_tags: which resources carry each (each resource's table writes its own rows, see setTags). */
export class TagTable extends DocumentTable<TagDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'tags', 'tags', (d) => ({ name: d.name }));
  }

  /** The resources that carry a tag, by kind (the resource's table name). */
  async members(tagUuid: string, trx: Db = this.dialect.db): Promise<Array<{ resource_type: string; resource_uuid: string }>> {
    return trx.selectFrom('resource_tags').select(['resource_type', 'resource_uuid']).where('tag_uuid', '=', tagUuid).execute();
  }

  /** Takes a tag off every resource's join rows (their documents are the caller's to write). */
  async dropMembers(tagUuid: string, trx: Db): Promise<void> {
    await trx.deleteFrom('resource_tags').where('tag_uuid', '=', tagUuid).execute();
  }
}
