// `hosts allow` / `hosts deny` (docs/protocol.md [module]): whether a client address (and the name
// its reverse lookup gave) may open a module, and the `@ERROR` line a refused client gets.
// Addresses are compared as rsync does, as bytes under a mask: IPv4, IPv6, `addr/bits`,
// `addr/mask`; names and addresses also as case-insensitive wildcards against the host name.
// Counterpart: rsync access.c (allow_access, access_match, match_hostname, match_address);
// clientserver.c rsync_module (the refusal lines).
import { isIPv4, isIPv6 } from 'node:net';
import { wildmatch } from '../../protocol/filter.js';
import type { DaemonConfig, ModuleConfig } from './config.js';

/** The host name rsync uses when reverse lookup is off (socket.c undetermined_hostname). */
export const UNDETERMINED_HOSTNAME = 'UNDETERMINED';
/** The host name rsync uses when reverse lookup found none (socket.c client_name's default). */
export const UNKNOWN_HOSTNAME = 'UNKNOWN';

/**
 * The addresses a name token resolves to (forward lookup), or null when it does not resolve.
 * The caller resolves them first (dns is asynchronous; this check is not): see tokensToResolve.
 */
export type ForwardLookup = (name: string) => string[] | null | undefined;

/** One address as bytes, with its IPv6 scope when it had one. */
interface Address {
  bytes: Uint8Array;
  scope?: string;
}

/** An IPv4-mapped IPv6 address as Node reports it (`::ffff:1.2.3.4`) becomes the IPv4 address, as rsync's client_addr does. */
// rsync/socket.c: client_sockaddr (the IN6_IS_ADDR_V4MAPPED conversion)
export function normalizeClientAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

/** inet_aton's IPv4 forms (1 to 4 parts, decimal, octal with a leading 0, hex with 0x), as getaddrinfo(AI_NUMERICHOST) takes them. */
function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length < 1 || parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) n = parseInt(p, 8);
    else if (/^[1-9]\d*$/.test(p)) n = parseInt(p, 10);
    else return undefined;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255) || last >= 2 ** (8 * (4 - nums.length))) return undefined;
  const out = new Uint8Array(4);
  nums.forEach((n, i) => (out[i] = n));
  for (let i = 3, v = last; i >= nums.length; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

/** A numeric IPv6 address (with an optional embedded IPv4 tail and `%scope`) as 16 bytes. */
function parseIPv6(text: string): Address | undefined {
  const pct = text.indexOf('%');
  const scope = pct >= 0 ? text.slice(pct + 1) : undefined;
  const body = pct >= 0 ? text.slice(0, pct) : text;
  if (!isIPv6(body)) return undefined;
  let head = body;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(head);
  if (v4) {
    const b = parseIPv4(v4[1]!)!;
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    head = head.slice(0, -v4[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const words = (s: string | undefined) => (s ? s.split(':').filter((w) => w !== '').map((w) => parseInt(w, 16)) : []);
  const l = words(left);
  const r = [...words(right), ...tail];
  const fill = right === undefined ? [] : new Array(8 - l.length - r.length).fill(0);
  const all = right === undefined ? [...l, ...tail] : [...l, ...fill, ...r];
  if (all.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return scope ? { bytes, scope } : { bytes };
}

function parseNumericHost(text: string): Address | undefined {
  if (text.includes(':')) return parseIPv6(text);
  const v4 = parseIPv4(text);
  return v4 ? { bytes: v4 } : undefined;
}

/** Whether `addr` is in the network a token gives (`a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/m.a.s.k`, IPv6 likewise). */
// rsync/access.c: match_address
export function matchAddress(addr: string, token: string): boolean {
  if (!addr) return false;
  const slash = token.indexOf('/');
  const host = slash >= 0 ? token.slice(0, slash) : token;
  const maskText = slash >= 0 ? token.slice(slash + 1) : undefined;
  // A token that is a host name, not an address, fails quietly.
  if (/[^.0-9]/.test(host) && !host.includes(':')) return false;
  const a = parseNumericHost(normalizeClientAddress(addr));
  const t = parseNumericHost(host);
  if (!a || !t || a.bytes.length !== t.bytes.length) return false;
  if (t.scope && a.scope !== t.scope) return false;
  const len = a.bytes.length;
  let mask: Uint8Array;
  if (maskText === undefined) mask = new Uint8Array(len).fill(0xff);
  else {
    const asAddress = len === 4 ? (isIPv4(maskText) ? parseIPv4(maskText) : undefined) : parseIPv6(maskText)?.bytes;
    if (asAddress) mask = asAddress;
    else {
      if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(maskText)) return false; // rsync: "malformed mask"
      const bits = parseInt(maskText, 10);
      if (bits === 0) return true;
      if (bits < 0 || bits > len * 8) return false;
      mask = new Uint8Array(len);
      for (let i = 0; i < len; i++) mask[i] = bits >= 8 * (i + 1) ? 0xff : bits > 8 * i ? (0xff << (8 - (bits - 8 * i))) & 0xff : 0;
    }
  }
  for (let i = 0; i < len; i++) if ((a.bytes[i]! ^ t.bytes[i]!) & mask[i]!) return false;
  return true;
}

/**
 * Whether the client's host name matches a token: wildcards, case-insensitive; then, with
 * `forward lookup`, a plain name token whose addresses include the client's. A deny token that
 * does not resolve counts as a match (rsync 3.5 fails closed); `@netgroup` tokens, which need
 * NIS, never match an allow list and always match a deny list.
 */
// rsync/access.c: match_hostname
function matchHostname(host: string, addr: string, token: string, deny: boolean, forwardLookup: boolean, forward?: ForwardLookup): boolean {
  if (!host) return false;
  if (token.startsWith('@') && token.length > 1) return deny;
  if (wildmatch(token, host.toLowerCase())) return true;
  if (!forwardLookup) return false;
  if (!/[^.0-9]/.test(token) || /[:/*?[]/.test(token)) return false;
  const addresses = forward?.(token);
  if (!addresses) return deny;
  const client = normalizeClientAddress(addr);
  return addresses.some((a) => normalizeClientAddress(a) === client);
}

/** Whether any token of a list matches the client. */
// rsync/access.c: access_match
function accessMatch(list: string[], addr: string, host: string, deny: boolean, forwardLookup: boolean, forward?: ForwardLookup): boolean {
  return list.some((tok) => matchHostname(host, addr, tok, deny, forwardLookup, forward) || matchAddress(addr, tok));
}

/**
 * Whether a client may open the module: an allow-list match always allows; with an allow list
 * and no deny list, nothing else is allowed; a deny-list match refuses; everything else is
 * allowed. `hostname` is what the reverse lookup gave (rsync's "UNKNOWN" when it found none);
 * undefined means no lookup was made (rsync's "UNDETERMINED", which tokens are matched against
 * too): see moduleNeedsReverseLookup for when rsync makes one.
 */
// rsync/access.c: allow_access
export function hostAllowed(module: ModuleConfig, addr: string, hostname: string | undefined, forward?: ForwardLookup): boolean {
  const host = hostname ?? UNDETERMINED_HOSTNAME;
  const allow = module.hostsAllow?.length ? module.hostsAllow : undefined;
  const deny = module.hostsDeny?.length ? module.hostsDeny : undefined;
  if (allow) {
    if (accessMatch(allow, addr, host, false, module.forwardLookup, forward)) return true;
    if (!deny) return false;
  }
  if (deny && accessMatch(deny, addr, host, true, module.forwardLookup, forward)) return false;
  return true;
}

/**
 * Whether the host name hostAllowed gets for this module must come from a reverse lookup: rsync
 * looks the name up for every connection when the global section says `reverse lookup = yes`
 * (a module's "no" does not stop that), and for a module that says yes when the global one is
 * off. Otherwise the name is UNDETERMINED (pass undefined).
 */
// rsync/clientserver.c: start_daemon ("host = lp_reverse_lookup(-1) ? ..."), rsync_module
export function moduleNeedsReverseLookup(config: DaemonConfig, module: ModuleConfig): boolean {
  return config.global.reverseLookup || module.reverseLookup;
}

/** The name tokens hostAllowed may look up forward (resolve them, then pass the results as `forward`). */
export function tokensToResolve(module: ModuleConfig): string[] {
  if (!module.forwardLookup) return [];
  return [...(module.hostsAllow ?? []), ...(module.hostsDeny ?? [])].filter(
    (t) => /[^.0-9]/.test(t) && !/[:/*?[]/.test(t) && !t.startsWith('@'),
  );
}

/**
 * What a refused client is told: "Unknown module" for an unlisted module (so a refusal does not
 * reveal it exists), else "access denied"; and rsync's log line.
 */
// rsync/clientserver.c: rsync_module (the allow_access refusal)
export function accessDeniedMessages(module: ModuleConfig, addr: string, hostname: string | undefined): { line: string; log: string } {
  const host = hostname ?? UNDETERMINED_HOSTNAME;
  const a = normalizeClientAddress(addr);
  return {
    line: module.list ? `@ERROR: access denied to ${module.name} from ${host} (${a})` : `@ERROR: Unknown module '${module.name}'`,
    log: `rsync denied on module ${module.name} from ${host} (${a})`,
  };
}
