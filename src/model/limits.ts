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
