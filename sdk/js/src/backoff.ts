// Exponential backoff with jitter, shared by the realtime client and the
// write queue.

/** How retries are spaced: `initial * factor^attempt`, at most `max`, with jitter. */
export interface BackoffOptions {
  /** The first delay in ms (default 500). */
  initial?: number;
  /** The longest delay in ms (default 30 000). */
  max?: number;
  /** The growth per attempt (default 2). */
  factor?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): the
 * exponential delay capped at `max`, then "equal jitter": a random value
 * between half of it and all of it, so clients that failed together do
 * not come back together. `random` returns [0, 1) (Math.random by default).
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initial = 500, max = 30_000, factor = 2 } = opts;
  const d = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(d / 2 + (random() * d) / 2);
}
