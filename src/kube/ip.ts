/**
 * Addresses as the Kubernetes API gives them (cluster IPs, external and
 * ingress IPs, endpoints, a Node's addresses), in the one text sluice
 * writes for each: IPv4 in dotted decimal as the model reads it, IPv6 in
 * RFC 5952 form (lower case, the longest run of zero groups as "::"), so
 * that an address written two ways is one VIP or backend.
 */
import { canonicalAddress, type IPFamily } from '../model/address.js';

export { familyName } from '../model/address.js';

/** An IP family by its number (4 or 6): the model's. */
export type Family = IPFamily;

/** A Kubernetes address in sluice's text, with its family. */
export interface KubeIP {
  family: Family;
  text: string;
}

/** The address's family and canonical text, or undefined if it is neither an IPv4 nor an IPv6 address (a zone id, "fe80::1%eth0", is not). */
export function kubeIP(s: unknown): KubeIP | undefined {
  const text = canonicalAddress(s);
  return text === undefined ? undefined : { family: familyOfText(text), text };
}

/** Family of an address already in sluice's text (IPv6 holds a ':'). */
export function familyOfText(text: string): Family {
  return text.includes(':') ? 6 : 4;
}
