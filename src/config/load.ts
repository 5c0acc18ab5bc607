// Read a config file, ours (YAML) or lsyncd 2's (Lua, by its .lua suffix), into an LsyncdConfig.
// docs/config.md; counterpart: lsyncd 2's lsyncd.lua (runner.configure: the config file's run).
import { openSync, fstatSync, readSync, closeSync } from 'node:fs';
import { extname } from 'node:path';
import { UsageError } from '../../protocol/errors.js';
import type { LsyncdConfig } from './model.js';
import { readYamlConfig } from './yaml.js';
import { runLuaConfig } from './lua.js';

/** A config file larger than this is refused before it is read (a config is a few kilobytes). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The text of a config file, bounded; an unreadable one is a UsageError naming it. */
function readBounded(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new UsageError(`${file}: cannot read the config file: ${(e as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`${file}: not a regular file`);
    if (stat.size > MAX_CONFIG_BYTES) throw new UsageError(`${file}: ${stat.size} bytes; a config file is at most ${MAX_CONFIG_BYTES}`);
    const buf = Buffer.alloc(stat.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Load a config file: lsyncd 2's Lua when it ends in .lua, our YAML otherwise. Throws ConfigError/UsageError. */
export function loadConfig(file: string): LsyncdConfig {
  const text = readBounded(file);
  return extname(file).toLowerCase() === '.lua' ? runLuaConfig(text, file) : readYamlConfig(text, file);
}
