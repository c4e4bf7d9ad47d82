/** What a running server's host reports about it: when it started, its NICs' addresses, its I/O counters. */
export interface ServerRuntime {
  active_since: string;
  nics: Array<{ mac: string; interface_type: 'public' | 'private'; ip_v4: string | null }>;
  io: { drives: Record<string, Record<string, number>>; nics: Record<string, Record<string, number>> };
}
