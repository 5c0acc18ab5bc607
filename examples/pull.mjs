// Bring a module's tree into a local directory. Nothing local is deleted unless you ask
// (`delete: true`, rsync's --delete).
// Usage: node pull.mjs rsync://host[:port]/module/path/ DEST   (or LSYNCD_SOURCE, LSYNCD_DEST)
import { pull } from 'lsyncd';

const source = process.argv[2] ?? process.env.LSYNCD_SOURCE;
const dest = process.argv[3] ?? process.env.LSYNCD_DEST;
if (!source || !dest) throw new Error('usage: node pull.mjs rsync://host/module/path/ DEST');

const result = await pull(source, dest, { exclude: ['*.tmp'] });
for (const change of result.changes) console.log(`${change.itemize} ${change.path}`);
console.log(`received ${result.stats.transferredFiles} files, exit code ${result.exitCode}`);
