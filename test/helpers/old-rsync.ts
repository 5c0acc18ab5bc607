// Debian 12's rsync 3.2.7 beside the system's rsync, for tests that compare clients of two
// generations: fetched once with `apt-get download` and unpacked with `dpkg -x` (as .ci/run does),
// cached under the system temp dir, reused by every test that needs it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The Debian package version fetched: bookworm's rsync 3.2.7 (protocol 32). */
export const OLD_RSYNC_PACKAGE = 'rsync=3.2.7-1+deb12u6';
/** Where the unpacked package is kept between test runs. */
export const OLD_RSYNC_CACHE = join(tmpdir(), 'lsyncd-rsync-3.2.7');

let pending: Promise<string> | undefined;

/** Path of Debian 12's rsync 3.2.7 binary; downloads and unpacks it on first use. */
export function oldRsync(): Promise<string> {
  pending ??= Promise.resolve().then(fetchOldRsync);
  return pending;
}

function fetchOldRsync(): string {
  const binary = join(OLD_RSYNC_CACHE, 'usr/bin/rsync');
  if (works(binary)) return binary;
  const work = mkdtempSync(join(tmpdir(), 'lsyncd-rsync-dl-'));
  try {
    const download = spawnSync('apt-get', ['download', OLD_RSYNC_PACKAGE], { cwd: work, encoding: 'utf8' });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (download.error || download.status !== 0 || !deb) {
      throw new Error(
        `cannot fetch Debian 12's rsync 3.2.7 (\`apt-get download ${OLD_RSYNC_PACKAGE}\` in ${work} failed: ` +
          `${download.error?.message ?? download.stderr.trim().split('\n').pop() ?? 'no .deb'}). ` +
          'This test needs apt with the Debian bookworm archive reachable (run `apt-get update` first), ' +
          `or the package unpacked by hand: \`dpkg -x rsync_3.2.7-*.deb ${OLD_RSYNC_CACHE}\`.`,
      );
    }
    const unpacked = join(work, 'root');
    const unpack = spawnSync('dpkg', ['-x', join(work, deb), unpacked], { encoding: 'utf8' });
    if (unpack.error || unpack.status !== 0) {
      throw new Error(`cannot unpack ${deb} with dpkg -x: ${unpack.error?.message ?? unpack.stderr.trim()}`);
    }
    // Move into place in one step, so a concurrent test never sees half a tree.
    mkdirSync(join(OLD_RSYNC_CACHE, '..'), { recursive: true });
    if (!works(binary)) {
      rmSync(OLD_RSYNC_CACHE, { recursive: true, force: true });
      renameSync(unpacked, OLD_RSYNC_CACHE);
    }
    if (!works(binary)) throw new Error(`${binary} does not run after unpacking ${deb}`);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function works(binary: string): boolean {
  if (!existsSync(binary)) return false;
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && /version\s+3\.2\.7\s/.test(probe.stdout);
}
