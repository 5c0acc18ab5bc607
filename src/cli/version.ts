// The version line (`lsyncd --version`): the package's version and the protocols we speak. Kept
// apart from main.ts so that the `lsyncd` entry (lsyncd.ts) answers --version without loading
// commander or the commands. docs/bench.md "CLI start".
import { readFileSync } from 'node:fs';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../protocol/daemon.js';

/** The package's version, from package.json (this file is dist/src/cli/version.js). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** What `lsyncd --version` prints (without the newline). */
export function versionLine(): string {
  return `lsyncd ${packageVersion()} (rsync daemon protocol ${MIN_PROTOCOL_VERSION}–${PROTOCOL_VERSION})`;
}
