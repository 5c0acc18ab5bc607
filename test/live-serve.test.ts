// The live mirror's end-to-end suite (test/live.test.ts) run against our own daemon, `lsyncd
// serve`, started with the same rsyncd.conf and command line as rsync's daemon there: one session
// per batch with --delete-missing-args, renames through --copy-dest and --fuzzy, primed sessions,
// restarts — the mirror must converge exactly as it does into rsyncd.
const suite = new URL('./live.test.js', import.meta.url);
suite.searchParams.set('daemon', 'lsyncd');
await import(suite.href);
