// What a daemon offers: its message of the day and its modules.
// Usage: node list-modules.mjs rsync://host[:port]/   (or LSYNCD_DAEMON=host::)
import { listModules } from 'lsyncd';

const daemon = process.argv[2] ?? process.env.LSYNCD_DAEMON;
if (!daemon) throw new Error('usage: node list-modules.mjs rsync://host[:port]/');

const { motd, modules } = await listModules(daemon);
for (const line of motd) console.log(`# ${line}`);
for (const { name, comment } of modules) console.log(`${name}\t${comment}`);
