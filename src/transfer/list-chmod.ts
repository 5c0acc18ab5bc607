// --chmod on our side of a transfer: the modes of the file list we send (a push) or receive (a
// pull) are tweaked by the --chmod clauses, symlinks and mode-0 entries excepted, as rsync's
// sender does when it builds its list and its receiver when it reads one (docs/protocol.md [flist]).
// The option never travels: rsync's client does not send it either.
// Counterpart: rsync flist.c send_file_name / recv_file_entry (the chmod_modes lines), chmod.c.
import { parseChmod, tweakMode, type ChmodModes } from '../../protocol/chmod.js';
import { isLink } from '../../protocol/modes.js';
import type { PackedFileList } from '../../protocol/flist-packed.js';
import type { ReceivedList } from '../../protocol/received-list.js';

/** Every --chmod text compiled, in order (rsync appends each to the last). Throws ChmodSyntaxError. */
// rsync/options.c: parse_arguments (OPT_CHMOD)
export function compileChmodOptions(texts: readonly string[], umask: number): ChmodModes {
  return texts.flatMap((text) => parseChmod(text, umask));
}

/** Tweak the modes of the packed list a push sends (its mode column, in place; not a symlink's, not a missing entry's mode 0). */
// rsync/flist.c: send_file_name (chmod_modes)
export function chmodPackedList(list: PackedFileList, modes: ChmodModes, from = 0): void {
  if (!modes.length) return;
  for (let i = from; i < list.count; i++) {
    const mode = list.mode[i]!;
    if (mode && !isLink(mode)) list.mode[i] = tweakMode(mode, modes);
  }
}

/** The same over the packed list a pull receives, as its receiver reads it. */
// rsync/flist.c: recv_file_entry (chmod_modes)
export function chmodReceivedList(list: ReceivedList, modes: ChmodModes): void {
  if (!modes.length) return;
  for (let ndx = 0; ndx < list.length; ndx++) {
    const mode = list.mode(ndx);
    if (mode && !isLink(mode)) list.setMode(ndx, tweakMode(mode, modes));
  }
}
