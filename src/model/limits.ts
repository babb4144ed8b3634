/**
 * The model's numeric limits, in a module of their own (no schema library)
 * so that the CLI can name them in its flags' help and checks without
 * loading the schema.
 */

/** Largest backend weight. */
export const MAX_WEIGHT = 1000;
/** Longest affinity timeout Kubernetes allows (one day). */
export const MAX_AFFINITY_TIMEOUT = 86400;
/** Longest service name. */
export const MAX_NAME_LENGTH = 253;
/** Shortest health-check interval, ms. */
export const MIN_HEALTH_INTERVAL_MS = 100;
/** Longest health-check interval, ms (one hour). */
export const MAX_HEALTH_INTERVAL_MS = 3_600_000;
/** Shortest health-check timeout, ms. */
export const MIN_HEALTH_TIMEOUT_MS = 10;
/** Most results in a row a rise or fall threshold may ask for. */
export const MAX_HEALTH_THRESHOLD = 100;
