/**
 * Checks shared by the resources, with the messages of
 * k8s.io/apimachinery pkg/util/validation and pkg/api/validation.
 */
import { isIP, isIPv4 } from 'node:net';
import { isObject, type FieldError, type JsonObject } from './status.js';

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Which rule a name follows. */
export type NameRule = 'dns1035' | 'dns1123-label' | 'dns1123-subdomain';

/** Errors of a name (or of any value that must follow `rule`) at `field`. */
export function checkName(field: string, value: string, rule: NameRule): FieldError[] {
  const [re, msg, max] =
    rule === 'dns1035' ? [DNS1035, DNS1035_MSG, 63] : rule === 'dns1123-label' ? [DNS1123_LABEL, DNS1123_LABEL_MSG, 63] : [DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG, 253];
  const errs: FieldError[] = [];
  if (value.length > max) errs.push({ type: 'Invalid', field, value, detail: `must be no more than ${max} characters` });
  if (!re.test(value)) errs.push({ type: 'Invalid', field, value, detail: msg });
  return errs;
}

/** metadata checks every resource shares: name (by `rule`), label keys and values. */
export function checkObjectMeta(obj: JsonObject, rule: NameRule): FieldError[] {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const errs: FieldError[] = [];
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') errs.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' });
  else errs.push(...checkName('metadata.name', name, rule));
  const labels = meta['labels'];
  if (isObject(labels)) {
    for (const [k, v] of Object.entries(labels)) {
      const [prefix, base] = k.includes('/') ? [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)] : ['', k];
      if (!QUALIFIED_NAME.test(base) || base.length > 63 || (prefix !== '' && !DNS1123_SUBDOMAIN.test(prefix))) {
        errs.push({
          type: 'Invalid',
          field: 'metadata.labels',
          value: k,
          detail:
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        });
      }
      if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) {
        errs.push({
          type: 'Invalid',
          field: 'metadata.labels',
          value: v,
          detail:
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        });
      }
    }
  }
  return errs;
}

/** A port number field: 1-65535. */
export function checkPortNumber(field: string, value: unknown): FieldError[] {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) {
    return [{ type: 'Invalid', field, value, detail: 'must be between 1 and 65535, inclusive' }];
  }
  return [];
}

/** A protocol field: SCTP, TCP or UDP. */
export function checkProtocol(field: string, value: unknown): FieldError[] {
  if (value === 'TCP' || value === 'UDP' || value === 'SCTP') return [];
  return [{ type: 'NotSupported', field, value, detail: 'supported values: "SCTP", "TCP", "UDP"' }];
}

/** An IP address field (v4 or v6). */
export function checkIP(field: string, value: unknown): FieldError[] {
  if (typeof value === 'string' && isIP(value) !== 0) return [];
  return [{ type: 'Invalid', field, value, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' }];
}

/** An IPv4 address field. */
export function checkIPv4(field: string, value: unknown): FieldError[] {
  if (typeof value === 'string' && isIPv4(value)) return [];
  return [{ type: 'Invalid', field, value, detail: 'must be a valid IPv4 address' }];
}

/** An enumerated field: `Unsupported value: "x": supported values: "A", "B"`. */
export function checkOneOf(field: string, value: unknown, allowed: readonly string[]): FieldError[] {
  if (typeof value === 'string' && allowed.includes(value)) return [];
  return [{ type: 'NotSupported', field, value, detail: `supported values: ${[...allowed].sort().map((a) => JSON.stringify(a)).join(', ')}` }];
}
