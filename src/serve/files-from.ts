// lsyncd serve and a client's --files-from: as the sender, the names come over the connection
// (`--files-from=-`: the client forwards its local list) or from a file of the module
// (`--files-from=FILE`, the client's `:FILE`); as the receiver of a push with `:FILE`, the
// module's file is forwarded to the client's sender while its file list comes in. A module's
// list is sanitized as rsyncd sanitizes it and never read through a link leading out of the
// module; every name is sanitized (walk-options.ts filesFromSource), so none leaves the module.
// Docs: docs/serve.md, docs/protocol.md [files-from]. Counterpart: rsync options.c
// parse_arguments (files_from on a daemon), flist.c send_file_list, io.c forward_filesfrom_data.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { FilesFromForwarder, localFilesFromNames, readForwardedNames } from '../../protocol/files-from.js';
import { sanitizePath } from '../../protocol/sanitize-path.js';
import type { ByteWriter } from '../../protocol/io.js';
import type { Demultiplexer } from '../../protocol/mplex.js';
import { FILES_FROM_MAX_BYTES, filesFromSource, insideRoot, type RelativeSource } from '../transfer/walk-options.js';
import { compileModuleRules, pathIsModuleExcluded } from './module-filter.js';
import { strerrorText } from './client-messages.js';
import type { FilterMatcher } from '../../protocol/filter.js';
import type { RoleRequest } from './request.js';
import { refuseRole } from './role-exit.js';

/**
 * The client's --files-from names as the walk's sources: read from the connection when the
 * client forwards its list (`-`: NUL-separated, unframed below protocol 31), or from a file of
 * the module (its path sanitized as rsyncd sanitizes it, never followed out of the module,
 * bounded; comments skipped, --from0 as the client says). Each name sanitized (walk-options.ts
 * filesFromSource): none leaves the module.
 */
// rsync/options.c: parse_arguments (the daemon's files_from) + flist.c send_file_list (the filesfrom_fd loop)
export async function filesFromSources(r: RoleRequest, file: string, relative: boolean, demux: Demultiplexer | null): Promise<RelativeSource[]> {
  const { args } = r;
  let names: Iterable<Buffer>;
  if (file === '-') {
    // Below 31 the client stops framing its output for the list (at 30 the frames resume after it).
    const source = r.protocol < 31 && demux ? demux.raw : r.reader;
    names = await readForwardedNames(source, r.memory);
  } else {
    names = localFilesFromNames(readModuleFilesFrom(r, file), args.from0);
  }
  const sources: RelativeSource[] = [];
  for (const name of names) sources.push(filesFromSource(name, relative));
  return sources;
}

/** A --files-from FILE of the module (`rsync --files-from=:FILE`): its bytes, or rsyncd's refusal. */
// rsync/options.c: parse_arguments (sanitize_path, the daemon filter check, open_no_attacker_symlinks)
export function readModuleFilesFrom(r: RoleRequest, file: string): Buffer {
  const { module } = r;
  const clean = sanitizePath(Buffer.from(file), 0).toString();
  // rsyncd answers this in its option parse (an option error, exit 4).
  const refuse = (why: string) => refuseRole(`rsync: failed to open files-from file ${clean}: ${why}`, EXIT.UNSUPPORTED);
  const rules = compileModuleRules(module);
  if (rules && pathIsModuleExcluded(rules, clean.split('/'))) throw refuse('No such file or directory');
  const path = join(module.path, clean);
  // Never out of the module: a symlink on the way that leads out is refused, as rsyncd refuses it.
  if (!insideRoot(realpathSync(module.path), path)) throw refuse('Too many levels of symbolic links');
  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (st.size > FILES_FROM_MAX_BYTES) throw refuse(`more than ${FILES_FROM_MAX_BYTES} bytes`);
    r.memory.charge(st.size, '--files-from list');
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof RsyncError) throw e;
    throw refuse(strerrorText(e));
  }
  return bytes;
}

/**
 * A pushing client's `--files-from=:FILE`: the module's list sent to its sender (converted as
 * rsync's forwarder converts it: NUL-separated, then the empty name), unframed below protocol 31
 * (the client reads it before it reads our frames), in MSG_DATA frames from 31. Runs side by
 * side with the read of the client's file list.
 */
// rsync/main.c: do_server_recv (start_filesfrom_forwarding) + io.c forward_filesfrom_data
export async function forwardModuleFilesFrom(writer: ByteWriter, bytes: Buffer, from0: boolean): Promise<void> {
  const converter = new FilesFromForwarder(from0);
  const raw = writer.protocol < 31;
  await writer.flush();
  for (const piece of [converter.chunk(bytes), converter.end()]) {
    if (piece.length === 0) continue;
    if (raw) {
      await writer.sink.write(piece);
    } else {
      writer.writeBuf(piece);
      await writer.flush();
    }
  }
}

/**
 * The listed names the module's rules let through: a name with a directory on its way (below
 * the request's path `parts`, through its `/./` base) that the rules exclude is dropped, as
 * rsyncd drops it (the name itself is matched by the walk's filter).
 */
// rsync/flist.c: send_file_list (path_is_daemon_excluded with ignore_filename)
export function listedBelow(sources: readonly RelativeSource[], rules: FilterMatcher | null, parts: readonly string[], onDropped: (name: string) => void): RelativeSource[] {
  if (!rules) return [...sources];
  return sources.filter((source) => {
    const path = [...parts, ...source.baseDir.split('/'), ...source.name.toString('latin1').split('/')].filter((p) => p !== '' && p !== '.');
    const excluded = pathIsModuleExcluded(rules, path.slice(0, -1));
    if (excluded) onDropped(path.join('/'));
    return !excluded;
  });
}
