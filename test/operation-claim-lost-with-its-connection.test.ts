import { describeStartThroughACut } from './helpers/start-through-a-cut.ts';

/**
 * Bug: an agent claims operations in the database, and the claim commits before its answer travels back. When the
 * connection died in between (a database restart, a network cut), the operations stayed `running` under the name of
 * an agent that never received them and kept heartbeating: the server stayed `starting` for ever.
 */
describeStartThroughACut({
  suite: 'an operation whose claim was lost with its connection',
  test: 'is still run by its agent: the server starts and no operation stays unfinished',
  server: 'lost-claim',
  // The statement that hands operations to an agent: cut its connection once it has committed a claim.
  sql: '"claimed_by" = $2, "claimed_at"',
  cut: 'the claim to be cut',
});
