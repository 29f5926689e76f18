import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

/** What an IP address is, for deciding whether a plugin may connect to it. Only `public` is allowed by default. */
export type AddressKind =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'linkLocal'
  | 'sharedCgnat'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** An address as 4 or 16 bytes. */
interface Ip {
  bytes: Uint8Array;
}

interface Range {
  net: Uint8Array;
  prefix: number;
}

/** A range whose addresses are classified by the IPv4 address they carry (bytes `at`..`at+4`). */
interface Embedding extends Range {
  at: number;
}

const range = (cidr: string): Range => {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`bad built-in range ${cidr}`);
  return parsed;
};
const table = (rows: [string, AddressKind][]) => rows.map(([cidr, kind]) => ({ ...range(cidr), kind }));

// First match wins, so narrower ranges come before the ones that contain them.
const V4_RANGES = table([
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'sharedCgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'linkLocal'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'reserved'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'],
  ['198.51.100.0/24', 'reserved'],
  ['203.0.113.0/24', 'reserved'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
]);

const V6_RANGES = table([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'reserved'],
  ['100::/64', 'reserved'],
  // Teredo (2001::/32) hides its client address obfuscated; with the rest of the IETF
  // protocol block and documentation it is refused outright.
  ['2001::/23', 'reserved'],
  ['2001:db8::/32', 'reserved'],
  ['3fff::/20', 'reserved'],
  ['fc00::/7', 'private'],
  ['fec0::/10', 'private'],
  ['fe80::/10', 'linkLocal'],
  ['ff00::/8', 'multicast'],
]);

// An IPv6 address that carries an IPv4 address gets the verdict of the IPv4 address, so a
// private IPv4 cannot be smuggled in an IPv6 costume.
const V4_MAPPED: Embedding = { ...range('::ffff:0:0/96'), at: 12 };
const V4_COMPATIBLE: Embedding = { ...range('::/96'), at: 12 }; // deprecated, but still parsed
const V4_EMBEDDINGS: Embedding[] = [
  V4_MAPPED,
  V4_COMPATIBLE,
  { ...range('64:ff9b::/96'), at: 12 }, // NAT64
  { ...range('2002::/16'), at: 2 }, // 6to4
];
const GLOBAL_UNICAST = range('2000::/3');

/**
 * Parses an IP address (IPv4 dotted decimal or IPv6, with an optional `%zone`, which is
 * ignored) to bytes. Returns `undefined` for anything else.
 *
 * @example
 * parseIp('::ffff:127.0.0.1')?.bytes.length; // 16
 */
export function parseIp(text: string): Ip | undefined {
  const address = text.replace(/%.*$/, '');
  if (isIPv4(address)) return { bytes: Uint8Array.from(address.split('.').map(Number)) };
  if (!isIPv6(address)) return undefined;
  // A trailing dotted quad (::ffff:1.2.3.4) is rewritten as its two hex groups.
  const lastColon = address.lastIndexOf(':');
  const quad = address.slice(lastColon + 1);
  const [a, b, c, d] = quad.split('.').map(Number);
  const hex = quad.includes('.') ? `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}` : address;
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const [left, right] = hex.split('::');
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const words = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  if (words.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return { bytes };
}

function parseCidr(text: string): Range | undefined {
  const [address, bits, extra] = text.trim().split('/');
  const ip = extra === undefined ? parseIp(address) : undefined;
  if (!ip || address.includes('%')) return undefined;
  const max = ip.bytes.length * 8;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { net: ip.bytes, prefix };
}

function contains(r: Range, bytes: Uint8Array): boolean {
  if (r.net.length !== bytes.length) return false;
  for (let bit = 0; bit < r.prefix; bit += 8) {
    const take = Math.min(8, r.prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((r.net[bit / 8] & mask) !== (bytes[bit / 8] & mask)) return false;
  }
  return true;
}

/** IPv4-mapped and -compatible addresses stand for their IPv4 address; others stand for themselves. */
function canonical(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16 && (contains(V4_MAPPED, bytes) || contains(V4_COMPATIBLE, bytes))) {
    const v4 = bytes.subarray(12);
    // `::` and `::1` are IPv6's own unspecified and loopback, not IPv4-compatible forms.
    if (!contains(V4_MAPPED, bytes) && v4[0] === 0 && v4[1] === 0 && v4[2] === 0 && v4[3] <= 1) return bytes;
    return v4;
  }
  return bytes;
}

/** The classification of one address: its kind, and the IPv4 address that decided it if one was embedded. */
export interface AddressClass {
  kind: AddressKind;
  /** The IPv4 address carried inside an IPv6 one (mapped, compatible, NAT64, 6to4), when that decided the kind. */
  embedded?: string;
}

/**
 * Classifies an IP address. Anything that is not ordinary public unicast gets a non-`public`
 * kind; unparsable input is `reserved`. IPv6 outside 2000::/3 is `reserved`.
 *
 * @example
 * classifyAddress('::ffff:169.254.169.254'); // { kind: 'linkLocal', embedded: '169.254.169.254' }
 * classifyAddress('93.184.215.14');          // { kind: 'public' }
 */
export function classifyAddress(address: string): AddressClass {
  const ip = parseIp(address);
  if (!ip) return { kind: 'reserved' };
  return classifyBytes(ip.bytes);
}

function classifyBytes(bytes: Uint8Array): AddressClass {
  if (bytes.length === 4) return { kind: V4_RANGES.find((r) => contains(r, bytes))?.kind ?? 'public' };
  const special = V6_RANGES.find((r) => contains(r, bytes));
  if (special) return { kind: special.kind };
  const embedding = V4_EMBEDDINGS.find((e) => contains(e, bytes));
  if (embedding) {
    const v4 = bytes.slice(embedding.at, embedding.at + 4);
    return { kind: classifyBytes(v4).kind, embedded: v4.join('.') };
  }
  return { kind: contains(GLOBAL_UNICAST, bytes) ? 'public' : 'reserved' };
}

/** The decision on one address: allowed, or refused with its kind. */
export type AddressVerdict = { allowed: true; kind: AddressKind } | { allowed: false; kind: AddressKind; embedded?: string };

/**
 * Which addresses a plugin may connect to: public unicast, plus what the host lists in
 * `allowAddress` (exact IPs or CIDRs). An IPv4-mapped IPv6 address matches its IPv4 entry.
 *
 * @example
 * const policy = new AddressPolicy(['10.1.2.0/24']);
 * policy.check('10.1.2.3').allowed;  // true
 * policy.check('127.0.0.1').allowed; // false (loopback)
 */
export class AddressPolicy {
  private readonly allowed: Range[];

  constructor(allowAddress: readonly string[] = []) {
    this.allowed = allowAddress.map((entry) => {
      const r = typeof entry === 'string' ? parseCidr(entry) : undefined;
      if (!r) {
        throw new InvalidArgumentError(
          `allowAddress entry '${String(entry)}' is not an IP address or CIDR; use e.g. 10.0.0.5, 10.0.0.0/8 or fd00::/8.`,
        );
      }
      const net = canonical(r.net);
      return net === r.net || r.prefix < 96 ? r : { net, prefix: r.prefix - 96 };
    });
  }

  check(address: string): AddressVerdict {
    const ip = parseIp(address);
    if (!ip) return { allowed: false, kind: 'reserved' };
    const { kind, embedded } = classifyBytes(ip.bytes);
    if (kind === 'public') return { allowed: true, kind };
    const bytes = canonical(ip.bytes);
    if (this.allowed.some((r) => contains(r, bytes))) return { allowed: true, kind };
    return { allowed: false, kind, embedded };
  }
}
