// Restart figures (issue 14, part 4): a live mirror of a 200,000-file tree restarted after 10
// changes made while it was down, with `startup: 'changed'` (the state file) against the full
// startup compare, wall time from start to an identical mirror; beside them the scan alone (the
// floor: "about the time of the scan"), and the state file's size, load time and snapshot write
// time. rsync daemon on loopback, everything on tmpfs. `node dist/bench/restart.js`;
// BENCH_RESTART_FILES=N changes the tree's size (default 200,000: 2,000 dirs of 100 files).
import { mkdir, rm, writeFile, appendFile, unlink, rename, chmod, symlink } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { startLiveMirror, type LiveMirrorOptions } from '../src/live/index.js';
import { scanSource } from '../src/transfer/scan.js';
import { readStateFile, encodeSnapshot, writeFileDurably } from '../src/live/state-file.js';
import { stateIdentity } from '../src/live/state.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { describeTarget } from '../src/live/runner.js';
import { machine, makeTempDir, startBenchDaemon, table } from './common.js';

const FILES = Number(process.env['BENCH_RESTART_FILES']) || 200_000;
const PER_DIR = 100;

async function makeTree(root: string): Promise<void> {
  const dirs = Math.ceil(FILES / PER_DIR);
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    await mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = 0; f < PER_DIR && d * PER_DIR + f < FILES; f++) writes.push(writeFile(join(dir, `file-${f}.txt`), `content of ${d}/${f}\n`));
    await Promise.all(writes);
  }
}

/** Ten changes: modify, rewrite, chmod, create (file, in a dir, a new dir), delete (file, dir), rename, symlink. */
async function tenChanges(root: string, round: number): Promise<void> {
  await appendFile(join(root, `d${round}/file-0.txt`), 'more\n');
  await writeFile(join(root, `d${round}/file-1.txt`), 'rewritten\n');
  await chmod(join(root, `d${round}/file-2.txt`), 0o600);
  await writeFile(join(root, `new-${round}.txt`), 'new\n');
  await writeFile(join(root, `d${round + 1}/new.txt`), 'new\n');
  await mkdir(join(root, `newdir-${round}`));
  await writeFile(join(root, `newdir-${round}/inner.txt`), 'inner\n');
  await unlink(join(root, `d${round}/file-3.txt`));
  await rm(join(root, `d${round + 2}`), { recursive: true });
  await rename(join(root, `d${round}/file-4.txt`), join(root, `d${round + 3}/renamed.txt`));
  await symlink('d0/file-5.txt', join(root, `link-${round}`));
}

async function main(): Promise<void> {
  const work = makeTempDir('lsyncd-bench-restart-');
  const daemon = await startBenchDaemon();
  try {
    const source = join(work, 'src');
    const stateFile = join(work, 'mirror.state');
    let t0 = performance.now();
    await makeTree(source);
    console.log(`tree: ${FILES} files in ${Math.ceil(FILES / PER_DIR)} directories, made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const targets = [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'tree/' }, session: {} }];
    const start = async (startup: LiveMirrorOptions['startup']): Promise<{ ms: number; differ: string }> => {
      let differ = '';
      const started = performance.now();
      const mirror = await startLiveMirror({
        source,
        targets,
        startup,
        stateFile,
        onLog: (_level, message) => {
          const m = /(\d+) path\(s\) differ/.exec(message);
          if (m) differ = m[1]!;
        },
      });
      await mirror.ready;
      await mirror.whenIdle();
      const ms = performance.now() - started;
      await mirror.stop();
      return { ms, differ };
    };

    // The first start: everything is sent, the state written.
    const first = await start('full');
    console.log(`first start (all data sent): ${(first.ms / 1000).toFixed(2)} s`);

    // The state file: size, load, snapshot write.
    const identity = stateIdentity(source, targets.map((t) => describeTarget(t.target)), { ...DEFAULT_TRANSFER, recursive: true, modifyWindow: -1 }, undefined);
    const bytes = statSync(stateFile).size;
    t0 = performance.now();
    const { targets: states } = readStateFile(stateFile, identity);
    const loadMs = performance.now() - t0;
    t0 = performance.now();
    const snapshot = encodeSnapshot(identity, states);
    const encodeMs = performance.now() - t0;
    t0 = performance.now();
    writeFileDurably(`${stateFile}.copy`, snapshot);
    const writeMs = performance.now() - t0;

    // The scan alone (the floor of any startup).
    t0 = performance.now();
    const scan = await scanSource(`${source}/`, { transfer: { ...DEFAULT_TRANSFER, recursive: true } });
    const scanMs = performance.now() - t0;

    await tenChanges(source, 10);
    const changed = await start('changed');
    await tenChanges(source, 20);
    const full = await start('full');

    const load = loadavg()[0]!.toFixed(1);
    console.log(`\nrestart of a live mirror after 10 changes, ${scan.list.count.toLocaleString('en-US')} entries (load average ${load} at the end; ${machine().join(', ')})`);
    console.log(
      table([
        ['figure', 'value'],
          ['scan of the tree alone', `${scanMs.toFixed(0)} ms`],
          [`restart, startup 'changed' (${changed.differ} paths differ)`, `${changed.ms.toFixed(0)} ms (${(changed.ms / scanMs).toFixed(2)}× the scan)`],
          [`restart, startup 'full'`, `${full.ms.toFixed(0)} ms (${(full.ms / changed.ms).toFixed(1)}× the changed restart)`],
          ['state file size', `${(bytes / 1e6).toFixed(2)} MB (${(bytes / scan.list.count).toFixed(1)} bytes per entry)`],
          ['state file load (read + replay)', `${loadMs.toFixed(0)} ms`],
          ['snapshot encode / durable write (temp, fsync, rename, dir fsync)', `${encodeMs.toFixed(0)} ms / ${writeMs.toFixed(0)} ms`],
      ]),
    );
  } finally {
    await daemon.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
