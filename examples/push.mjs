// Put a local tree onto a module, reporting progress while big files go, and the changes.
// Usage: node push.mjs SOURCE/ rsync://host[:port]/module/path/   (or LSYNCD_SOURCE, LSYNCD_TARGET)
// The password, if the module needs one, comes from RSYNC_PASSWORD, as with rsync.
import { push, RsyncError } from 'lsyncd';

const source = process.argv[2] ?? process.env.LSYNCD_SOURCE;
const target = process.argv[3] ?? process.env.LSYNCD_TARGET;
if (!source || !target) throw new Error('usage: node push.mjs SOURCE/ rsync://host/module/path/');

// Ctrl-C cancels the push: the daemon keeps no part of the file that was going.
const cancel = new AbortController();
process.once('SIGINT', () => cancel.abort());

try {
  const result = await push(source, target, {
    signal: cancel.signal,
    onProgress: ({ path, bytes, size, filesDone, filesTotal }) =>
      console.error(`progress ${path} ${bytes}/${size} (${filesDone}/${filesTotal} files)`),
  });
  for (const change of result.changes) console.log(`${change.itemize} ${change.path}`);
  console.log(`sent ${result.stats.transferredFiles} files, exit code ${result.exitCode}`);
} catch (e) {
  if (!(e instanceof RsyncError)) throw e;
  console.error(`push failed: ${e.message} (${e.code}, rsync exit code ${e.exitCode})`);
  process.exitCode = e.exitCode;
} finally {
  process.removeAllListeners('SIGINT');
}
