// A module's tree, entry by entry, as rsync --list-only shows it; fine for big trees (the
// listing waits while the loop is behind, and `break` closes the connection).
// Usage: node list.mjs rsync://host[:port]/module/path/   (or LSYNCD_TARGET)
import { listEntries } from 'lsyncd';

const target = process.argv[2] ?? process.env.LSYNCD_TARGET;
if (!target) throw new Error('usage: node list.mjs rsync://host/module/path/');

for await (const entry of listEntries(target, { recursive: true })) {
  const link = entry.symlinkTarget === undefined ? '' : ` -> ${entry.symlinkTarget}`;
  console.log(`${entry.type}\t${entry.size}\t${entry.mtime.toISOString()}\t${entry.path}${link}`);
}
