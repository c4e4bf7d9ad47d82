/** Triggers that keep row_counts (rows per table and owner) exact in the transaction of every insert, delete and owner change. */
export function rowCountTriggers(table: string): string[] {
  return [
    `CREATE OR REPLACE FUNCTION opensigma_row_count() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF TG_OP IN ('DELETE', 'UPDATE') THEN
         UPDATE row_counts SET n = n - 1 WHERE tbl = TG_TABLE_NAME AND owner_key = coalesce(OLD.owner, '');
       END IF;
       IF TG_OP IN ('INSERT', 'UPDATE') THEN
         INSERT INTO row_counts (tbl, owner_key, n) VALUES (TG_TABLE_NAME, coalesce(NEW.owner, ''), 1)
         ON CONFLICT (tbl, owner_key) DO UPDATE SET n = row_counts.n + 1;
       END IF;
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER ${table}_count AFTER INSERT OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION opensigma_row_count()`,
    `CREATE TRIGGER ${table}_count_owner AFTER UPDATE OF owner ON ${table} FOR EACH ROW WHEN (OLD.owner IS DISTINCT FROM NEW.owner) EXECUTE FUNCTION opensigma_row_count()`,
  ];
}
