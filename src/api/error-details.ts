/**
 * The rich error model (google.rpc.Status in the `grpc-status-details-bin`
 * trailer) with one detail, google.rpc.BadRequest, that names the field at
 * fault: what clients of other languages read with their standard status
 * helpers. The few message types are declared inline (protobufjs) rather
 * than served: they are part of the gRPC error model, not of this API.
 */
import protobuf from 'protobufjs';

/** The trailer that carries the encoded google.rpc.Status. */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
/** Type URL of google.rpc.BadRequest in a google.protobuf.Any. */
export const BAD_REQUEST_TYPE_URL = 'type.googleapis.com/google.rpc.BadRequest';

const root = protobuf.parse(`
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; }
  repeated FieldViolation field_violations = 1;
}
`, { keepCase: true }).root;
const StatusType = root.lookupType('google.rpc.Status');
const BadRequestType = root.lookupType('google.rpc.BadRequest');

/** One field violation. */
export interface FieldViolation {
  /** Path of the field in the request, e.g. "service.ports[0].port". */
  field: string;
  description: string;
}

/** Encode a google.rpc.Status with one BadRequest detail. */
export function encodeBadRequestStatus(code: number, message: string, violation: FieldViolation): Buffer {
  const detail = BadRequestType.encode(BadRequestType.fromObject({ field_violations: [violation] })).finish();
  const status = StatusType.fromObject({ code, message, details: [{ type_url: BAD_REQUEST_TYPE_URL, value: detail }] });
  return Buffer.from(StatusType.encode(status).finish());
}

/** The field violations in an encoded google.rpc.Status (none if it has no BadRequest or does not decode). */
export function decodeFieldViolations(bin: Buffer | Uint8Array): FieldViolation[] {
  try {
    const status = StatusType.toObject(StatusType.decode(bin), { defaults: true }) as {
      details: Array<{ type_url: string; value: Uint8Array }>;
    };
    return status.details
      .filter((d) => d.type_url === BAD_REQUEST_TYPE_URL)
      .flatMap((d) => {
        const br = BadRequestType.toObject(BadRequestType.decode(d.value), { defaults: true }) as {
          field_violations: FieldViolation[];
        };
        return br.field_violations;
      });
  } catch {
    return [];
  }
}

/** Trailer metadata on every error status the daemon sends (value "daemon"), so that a client tells the daemon's UNAVAILABLE (its store) from its own failure to reach the daemon. */
export const ORIGIN_KEY = 'sluice-origin';
