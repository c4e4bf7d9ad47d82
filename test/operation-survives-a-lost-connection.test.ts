import { describeStartThroughACut } from './helpers/start-through-a-cut.ts';

/**
 * Bug: when the agent's database connection died while it worked on an operation (a database restart), the
 * operation failed with the connection's error: an acknowledged start ended with the server stopped. It is now
 * done again once the database answers.
 */
describeStartThroughACut({
  suite: 'an operation whose database connection dies mid-way',
  test: 'is done again: an acknowledged start ends with the server running',
  server: 'connection-lost',
  // The agent's first step of a start reads the server: its connection dies with the answer.
  sql: 'from "servers" where "uuid" = $',
  cut: 'the connection to be cut',
});
