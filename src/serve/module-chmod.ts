// A module's `incoming chmod` / `outgoing chmod`, compiled for one connection: the receiving side
// tweaks the modes of the list it receives, the sender those of the list it sends (docs/protocol.md
// [flist]). A value rsync cannot parse is logged in rsync's words and the transfer goes on with no
// tweak, as rsyncd does (the config load already warned about it, with its file and line).
// Counterpart: rsync clientserver.c rsync_module (daemon_chmod_modes).
import { ChmodSyntaxError, parseChmod, type ChmodModes } from '../../protocol/chmod.js';
import type { ModuleConfig } from './config.js';
import { logText, type LogWriter } from './log.js';

/** The module's tweaks for one direction, or null when it has none (or an invalid one). */
// rsync/clientserver.c: rsync_module (the incoming/outgoing chmod step)
export function moduleChmod(module: Pick<ModuleConfig, 'incomingChmod' | 'outgoingChmod'>, direction: 'incoming' | 'outgoing', log: LogWriter): ChmodModes | null {
  const text = direction === 'incoming' ? module.incomingChmod : module.outgoingChmod;
  if (!text) return null;
  try {
    return parseChmod(text, process.umask());
  } catch (e) {
    if (!(e instanceof ChmodSyntaxError)) throw e;
    logText(log, `Invalid "${direction} chmod" directive: ${text}`);
    return null;
  }
}
