// The daemon's side of authentication (docs/protocol.md [auth]): the AUTHREQD challenge, the
// module's `auth users` rules, the secrets file under `strict modes`, and the check of the
// client's `user response` line. No password or secret ever enters a returned or logged text.
// Counterpart: rsync authenticate.c (gen_challenge, auth_server, check_secret); the client's side
// is protocol/daemon.ts (authResponse, chooseAuthDigest, chooseDaemonAuthDigest).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { open, lstat } from 'node:fs/promises';
import { authResponse, type AuthDigest } from '../../protocol/daemon.js';
import { wildmatch } from '../../protocol/filter.js';
import { confStrtok } from './conf-list.js';

/** One entry of `auth users`: a user or `@group` pattern (wildmat), with its `:deny`/`:ro`/`:rw`. */
/** What authentication reads of a module (config.ts's ModuleConfig has it all). */
export interface AuthModule {
  name: string;
  authUsers: readonly AuthUserRule[];
  secretsFile?: string;
  strictModes: boolean;
}

export interface AuthUserRule {
  /** The pattern without `@` and without the `:option` suffix. */
  pattern: string;
  /** True for `@group`. */
  group: boolean;
  /** `:deny` (any word starting with d), `:ro`, `:rw`; undefined when absent or not understood. */
  access?: 'deny' | 'ro' | 'rw';
}

/** The prefix of the challenge line (`@RSYNCD: AUTHREQD <challenge>`). */
export const AUTHREQD_PREFIX = '@RSYNCD: AUTHREQD ';
/** Longest `user response` line rsync reads (BIGPATHBUFLEN, MAXPATHLEN + 1024): bound the read with it. */
export const MAX_AUTH_LINE = 4096 + 1024;
/** Largest secrets file we read (rsync reads it line by line, unbounded). */
export const MAX_SECRETS_BYTES = 1024 * 1024;
/** rsync reads the secrets file with fgets into 1024 bytes: a longer line is read as several. */
const SECRETS_LINE_BUFFER = 1024;

/** Bytes of each digest, which fix the challenge's length (rsync hashes into the negotiated digest). */
const DIGEST_BYTES: Record<AuthDigest, number> = { sha512: 64, sha256: 32, sha1: 20, md5: 16, md4: 16, md4old: 16 };

/**
 * A fresh challenge: as many random bytes as the negotiated digest has (rsync hashes 32 random
 * bytes with address, time and pid through that digest), base64 without padding, so it has the
 * length and alphabet of rsync's (86 characters for sha512, 22 for md5/md4).
 */
// rsync/authenticate.c: gen_challenge
export function makeChallenge(digest: AuthDigest = 'md5'): string {
  return randomBytes(DIGEST_BYTES[digest]).toString('base64').replace(/=+$/, '');
}

/** The AUTHREQD line the daemon sends (without its newline). */
// rsync/clientserver.c: rsync_module (auth_server's leader)
export function formatChallengeLine(challenge: string): string {
  return AUTHREQD_PREFIX + challenge;
}

/** `auth users` as rsync 3.5 reads it: conf_strtok entries, `@group`, then `:deny`/`:ro`/`:rw`. */
// rsync/authenticate.c: auth_server (the token loop)
export function parseAuthUsers(text: string): AuthUserRule[] {
  return confStrtok(text).map((tok) => {
    const colon = tok.indexOf(':');
    let name = tok;
    let access: AuthUserRule['access'];
    if (colon >= 0) {
      name = tok.slice(0, colon);
      const opt = tok.slice(colon + 1).toLowerCase();
      if (opt[0] === 'r') access = opt[1] === 'o' ? 'ro' : opt[1] === 'w' ? 'rw' : undefined;
      else if (opt[0] === 'd') access = 'deny';
    }
    const group = name.startsWith('@');
    return { pattern: group ? name.slice(1) : name, group, ...(access ? { access } : {}) };
  });
}

/** The client's answer split at its first space, or undefined for rsync's "invalid challenge response". */
// rsync/authenticate.c: auth_server (read_line_old, strchr(line, ' '))
export function parseAuthLine(line: string): { user: string; response: string } | undefined {
  const space = line.indexOf(' ');
  if (space < 0) return undefined;
  return { user: line.slice(0, space), response: line.slice(space + 1) };
}

export interface AuthRequest {
  /** The user name the client sent. */
  user: string;
  /** The base64 digest the client sent. */
  response: string;
  /** The challenge we sent. */
  challenge: string;
  /** The digest both sides agreed on (chooseDaemonAuthDigest). */
  digest: AuthDigest;
  /** The negotiated protocol (kept for the log; the digest already carries the protocol's choice). */
  protocol: number;
  /** The groups a user belongs to, for `@group` rules (rsync asks getgrouplist); none when absent. */
  groupsOf?: (user: string) => string[] | Promise<string[]>;
  /** For the log lines: the client's host name and address. */
  host?: string;
  addr?: string;
  /** Whether the daemon runs as root (default: our euid is 0, rsync's MY_UID): the secrets file must then be root's. */
  asRoot?: boolean;
}

export type AuthOutcome =
  | {
      ok: true;
      /** The authenticated user ('' when the module has no `auth users`: anonymous, as rsync returns). */
      user: string;
      /** `:ro` → true, `:rw` → false, otherwise undefined (the module's `read only` stands). */
      readOnly?: boolean;
      /** rsync's log lines for this step (none on success). */
      log: string[];
    }
  | {
      ok: false;
      /** rsync's reason: "no matching rule", "denied by rule", "password mismatch", "secret not found", ... */
      reason: string;
      /** rsync's log lines, ending with "auth failed on module ... : REASON". Never a password. */
      log: string[];
    };

/** The `@ERROR` line a client gets when authentication fails. */
// rsync/clientserver.c: rsync_module
export function authFailedLine(moduleName: string): string {
  return `@ERROR: auth failed on module ${moduleName}`;
}

/** Compare two base64 texts in constant time for their length. */
function sameResponse(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Check a client's answer against the module's `auth users` and secrets file, as auth_server
 * does: the first rule matching the user (or one of its groups) decides; `:deny` refuses; else
 * the secrets file must hold a line for the user (or the matched group) whose password gives the
 * same response.
 */
// rsync/authenticate.c: auth_server
export async function checkAuth(module: AuthModule, request: AuthRequest): Promise<AuthOutcome> {
  if (!module.authUsers.length) return { ok: true, user: '', log: [] };
  const { user } = request;
  let groups: string[] | undefined;
  let matched: AuthUserRule | undefined;
  let matchedGroup: string | undefined;
  for (const rule of module.authUsers) {
    if (!rule.group) {
      if (wildmatch(rule.pattern, user)) {
        matched = rule;
        break;
      }
      continue;
    }
    groups ??= request.groupsOf ? await request.groupsOf(user) : [];
    const g = groups.find((name) => wildmatch(rule.pattern, name));
    if (g !== undefined) {
      matched = rule;
      matchedGroup = g;
      break;
    }
  }
  const log: string[] = [];
  let reason: string | undefined;
  if (!matched) reason = 'no matching rule';
  else if (matched.access === 'deny') reason = 'denied by rule';
  else reason = await checkSecret(module, user, matchedGroup, request, log);
  if (reason) {
    const where = `${module.name} from ${request.host ?? 'UNKNOWN'} (${request.addr ?? 'UNKNOWN'})`;
    log.push(`auth failed on module ${where} for ${user}: ${reason}`);
    return { ok: false, reason, log };
  }
  const readOnly = matched!.access === 'ro' ? true : matched!.access === 'rw' ? false : undefined;
  return { ok: true, user, ...(readOnly === undefined ? {} : { readOnly }), log };
}

/** The lines of the secrets file the way fgets(1024) + strtok("\n\r") hands them out. */
function secretsLines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    let end = nl < 0 ? bytes.length : nl + 1;
    if (end - at > SECRETS_LINE_BUFFER - 1) end = at + SECRETS_LINE_BUFFER - 1;
    const chunk = bytes.subarray(at, end);
    at = end;
    // strtok(line, "\n\r"): skip leading CR/LF, stop at the next one.
    let s = 0;
    while (s < chunk.length && (chunk[s] === 0x0a || chunk[s] === 0x0d)) s++;
    let e = s;
    while (e < chunk.length && chunk[e] !== 0x0a && chunk[e] !== 0x0d) e++;
    if (e > s) out.push(chunk.subarray(s, e));
  }
  return out;
}

/** Find the user's (or group's) secret and compare the response; returns rsync's error text or undefined. */
// rsync/authenticate.c: check_secret
async function checkSecret(
  module: AuthModule,
  user: string,
  group: string | undefined,
  request: AuthRequest,
  log: string[],
): Promise<string | undefined> {
  const fname = module.secretsFile;
  if (!fname) return 'no secrets file';
  let bytes: Buffer;
  try {
    // rsync opens it with open_no_attacker_symlinks: a symlink owned by someone else is refused.
    const link = await lstat(fname);
    if (link.isSymbolicLink() && link.uid !== 0 && link.uid !== process.geteuid?.()) return 'no secrets file';
    const fh = await open(fname, 'r');
    try {
      const st = await fh.stat();
      if (module.strictModes) {
        if ((st.mode & 0o006) !== 0) {
          log.push('secrets file must not be other-accessible (see strict modes option)');
          return 'ignoring secrets file';
        }
        const asRoot = request.asRoot ?? process.geteuid?.() === 0; // rsync: MY_UID() is geteuid()
        if (asRoot && st.uid !== 0) {
          log.push('secrets file must be owned by root when running as root (see strict modes)');
          return 'ignoring secrets file';
        }
      }
      if (st.size > MAX_SECRETS_BYTES) {
        log.push(`secrets file ${fname} is larger than ${MAX_SECRETS_BYTES} bytes`);
        return 'ignoring secrets file';
      }
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EACCES') {
      return 'no secrets file';
    }
    log.push(`fstat(${fname}) failed: ${(e as Error).message}`);
    return 'ignoring secrets file';
  }
  if (user.startsWith('#')) return 'invalid username'; // a comment line must never match
  const wanted = { user: Buffer.from(user, 'utf8') as Buffer | undefined, group: group === undefined ? undefined : Buffer.from(group, 'utf8') };
  let err = 'secret not found';
  try {
    for (const line of secretsLines(bytes)) {
      if (!wanted.user && !wanted.group) break;
      const isGroup = line[0] === 0x40; /* @ */
      const s = isGroup ? line.subarray(1) : line;
      const name = isGroup ? wanted.group : wanted.user;
      if (!name || s.length <= name.length || !s.subarray(0, name.length).equals(name) || s[name.length] !== 0x3a /* : */) {
        continue;
      }
      const expected = await authResponse(request.digest, s.subarray(name.length + 1), request.challenge);
      if (sameResponse(request.response, expected)) return undefined;
      err = 'password mismatch';
      if (isGroup) wanted.group = undefined;
      else wanted.user = undefined; // don't look for this name again
    }
  } finally {
    bytes.fill(0);
  }
  return err;
}
