/** Triggers that keep row_counts (rows per table and owner) exact in the transaction of every insert, delete and owner change. */
export function rowCountTriggers(table: string): string[] {
  const inc = (who: string) =>
    `INSERT INTO row_counts (tbl, owner_key, n) VALUES ('${table}', coalesce(${who}.owner, ''), 1) ON CONFLICT (tbl, owner_key) DO UPDATE SET n = n + 1;`;
  const dec = (who: string) => `UPDATE row_counts SET n = n - 1 WHERE tbl = '${table}' AND owner_key = coalesce(${who}.owner, '');`;
  return [
    `CREATE TRIGGER ${table}_count_insert AFTER INSERT ON ${table} BEGIN ${inc('NEW')} END`,
    `CREATE TRIGGER ${table}_count_delete AFTER DELETE ON ${table} BEGIN ${dec('OLD')} END`,
    `CREATE TRIGGER ${table}_count_owner AFTER UPDATE OF owner ON ${table} WHEN coalesce(OLD.owner, '') <> coalesce(NEW.owner, '') BEGIN ${dec('OLD')} ${inc('NEW')} END`,
  ];
}
