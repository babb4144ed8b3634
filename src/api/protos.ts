/**
 * The API's .proto files, loaded at run time with @grpc/proto-loader from
 * the package root's proto/ directory (found by walking up from this
 * module, so it works from src/ under tsx and from dist/src/ compiled).
 *
 * Loader options, shared by the server, the client and the tests:
 * - keepCase false: fields are camelCase in JavaScript (`targetPort`);
 * - longs String: 64-bit integers (revisions, counters) are decimal
 *   strings, so counters beyond 2^53 stay exact; the typed client turns
 *   revisions into numbers and counters into bigints;
 * - enums String: enum values are their names ('TCP'); an unknown number
 *   stays a number (and is rejected by validation);
 * - defaults true: unset scalars and lists read as their zero value, unset
 *   messages as null; `optional` fields (proto3 presence) stay absent when
 *   unset;
 * - oneofs true.
 */
import path from 'node:path';
import { packageRoot } from '../package-root.js';
import * as protoLoader from '@grpc/proto-loader';

/** The proto files the server serves, relative to the proto/ directory. */
export const PROTO_FILES = [
  'sluice/v1/service.proto',
  'sluice/v1/service_registry.proto',
  'sluice/v1/registration.proto',
  'sluice/v1/operations.proto',
  'grpc/health/v1/health.proto',
] as const;

/** Largest message either side accepts (ApplyServices of 10,000 services is a few MB). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Fully qualified names of the sluice services. */
export const SLUICE_SERVICES = ['sluice.v1.ServiceRegistry', 'sluice.v1.Registration', 'sluice.v1.Operations'] as const;

/** The package root's proto/ directory. */
export function protoDir(): string {
  return path.join(packageRoot(), 'proto');
}

/** The proto-loader options of the whole API (see the module comment). */
export function loaderOptions(): protoLoader.Options {
  return { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir()] };
}

let cached: protoLoader.PackageDefinition | undefined;
let cachedForReflection: protoLoader.PackageDefinition | undefined;

/** The package definition of every API proto file (loaded once). */
export function packageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync([...PROTO_FILES], loaderOptions());
  return cached;
}

/**
 * The same files loaded with keepCase, for server reflection: the file
 * descriptors it serves then carry the fields' proto names
 * (`target_port`), not the camelCase names JavaScript code uses.
 */
export function reflectionPackageDefinition(): protoLoader.PackageDefinition {
  cachedForReflection ??= protoLoader.loadSync([...PROTO_FILES], { ...loaderOptions(), keepCase: true });
  return cachedForReflection;
}
