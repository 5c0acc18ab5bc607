// What a client may ask of lsyncd serve that it does not do yet: refused by name after the setup
// phase (exit 4, rsync's "requested action not supported"), never ignored, so a client never gets
// a tree other than the one it asked for. The sender's walk (src/transfer/scan.ts) follows links
// (-L, --copy-unsafe-links), stays on one file system (-x) and keeps full paths (-R), but does not
// follow links to directories only (-k) or read a --files-from list yet; the receiver does not
// prune empty directories yet. docs/serve.md "Differences from rsyncd" lists them.
// Counterpart: none in rsync (rsyncd does them all).
import type { ServerArgs } from '../../protocol/server-args.js';

/** The first option of the client's list that this daemon's role cannot honour, as a message; or undefined. */
export function unsupportedOption(args: ServerArgs): string | undefined {
  const sending: Array<[string, boolean]> = [
    ['--copy-dirlinks (-k)', args.copyDirlinks],
    ['--files-from', args.filesFrom !== undefined],
  ];
  const receiving: Array<[string, boolean]> = [['--prune-empty-dirs (-m)', args.pruneEmptyDirs]];
  const found = (args.sender ? sending : receiving).find(([, on]) => on);
  return found && `lsyncd serve does not support ${found[0]} yet`;
}
