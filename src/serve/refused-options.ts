// Options a client may send that lsyncd serve reads but would not honour (issue 13): refused by
// name after the setup phase (exit 4, rsync's "requested action not supported") rather than
// ignored, so a client never gets a result other than the one it asked for (-A and -X are served:
// protocol/acls.ts, protocol/xattrs.ts); each names what is missing.
// -T and --delay-updates are served (src/transfer/dest-tree.ts, protocol/receiver.ts). Options
// with no effect on the result (--preallocate, -B, ...) stay accepted; docs/options.md and docs/serve.md "Differences from rsyncd" list both kinds.
// Counterpart: rsync options.c parse_arguments (the "not supported on this server" errors).
import type { TransferOptions } from '../../protocol/args.js';
import type { ServerArgs } from '../../protocol/server-args.js';
import type { XattrOptions } from '../../protocol/xattrs.js';
import { XattrUnsupportedError, xattrOptionsFor } from '../transfer/local-xattrs.js';
import { refuseRole } from './role-exit.js';

/** The first option of the client's list this daemon would not honour, as the client's error line; or undefined. */
// rsync/options.c: parse_arguments (the options a build without their support refuses)
export function refusedOption(args: ServerArgs, module: { fakeSuper: boolean } = { fakeSuper: false }): string | undefined {
  const missing = (name: string) => `lsyncd serve does not support ${name}`;
  // Both roles: -U and -N add fields to every file-list entry; --iconv converts every name.
  const always: Array<[string, boolean]> = [
    ['--atimes (-U)', args.atimes > 0],
    ['--crtimes (-N)', args.crtimes],
    ['--iconv', args.iconv !== undefined && args.iconv !== '-'],
    // A pull: our sender would have to remove each file the client confirms (MSG_SUCCESS); a
    // push: our receiver would have to confirm each one so that the client removes it.
    [args.removeSourceFiles === 2 ? '--remove-sent-files' : '--remove-source-files', args.removeSourceFiles > 0],
  ];
  // What only the receiving side does (a client's push into us).
  const receiving: Array<[string, boolean]> = [
    ['--write-devices', args.writeDevices],
    // A client's --fake-super is rsyncd's --super unless the module fakes it (clientserver.c);
    // under `fake super` rsync keeps ACLs in user.rsync.%aacl/%dacl records, not written here.
    ['--acls (-A) in a fake super module', args.acls && module.fakeSuper],
  ];
  // What only the sending side does (a client's pull from us).
  const sending: Array<[string, boolean]> = [['--copy-devices', args.copyDevices]];
  const found = [...always, ...(args.sender ? sending : receiving)].find(([, on]) => on);
  return found && missing(found[0]);
}

/**
 * -X's options for a role, or its refusal below protocol 30 in rsync's words (exit 2, as rsyncd's
 * setup_protocol ends it): null without -X.
 */
// rsync/compat.c: setup_protocol (preserve_xattrs below 30)
export function xattrOptionsOrRefusal(transfer: TransferOptions, protocol: number, compatFlags: number): XattrOptions | null {
  return refusedAsRole(() => xattrOptionsFor(transfer, protocol, compatFlags));
}

/** What `make` gives, or its XattrUnsupportedError (-X/-A below protocol 30, no addon) as the role's refusal. */
export function refusedAsRole<T>(make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof XattrUnsupportedError) throw refuseRole(e.message, e.exitCode);
    throw e;
  }
}
