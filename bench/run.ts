// `npm run bench`: every benchmark, one after the other, each in its own process
// (push: bench/push.ts, pull: bench/pull.ts, watcher: bench/watcher.ts, live mirror next to lsyncd 2: bench/live.ts,
// restart with the state file: bench/restart.ts, big trees: bench/bigtree.ts, compression: bench/compress.ts).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches: [string, string[]][] = [
  ['push.js', []],
  ['pull.js', []],
  ['serve.js', []],
  ['watcher.js', ['--expose-gc']],
  ['live.js', []],
  ['restart.js', []],
  ['bigtree.js', []],
  ['compress.js', []],
];
let failed = 0;
for (const [file, flags] of benches) {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const r = spawnSync(process.execPath, [...flags, path], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench ${file} failed (${r.status ?? r.signal})`);
    failed++;
  }
  console.log('');
}
process.exitCode = failed ? 1 : 0;
