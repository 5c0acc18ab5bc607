// Keep a module equal to a local tree as it changes, until Ctrl-C (or SIGTERM).
// Usage: node mirror.mjs SOURCE/ rsync://host[:port]/module/path/   (or LSYNCD_SOURCE, LSYNCD_TARGET)
import { mirror } from 'lsyncd';

const source = process.argv[2] ?? process.env.LSYNCD_SOURCE;
const target = process.argv[3] ?? process.env.LSYNCD_TARGET;
if (!source || !target) throw new Error('usage: node mirror.mjs SOURCE/ rsync://host/module/path/');

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop.abort());

const running = await mirror(source, target, {
  delayMs: 200,
  onLog: (level, message) => console.error(`${level}: ${message}`),
  onChange: (change) => console.log(`${change.itemize} ${change.path}`),
});
try {
  await running.ready;
  const { watcher, pollingReason } = running.status();
  console.log(`mirroring ${source} with the ${watcher?.backend} watcher${pollingReason ? ` (${pollingReason})` : ''}`);
  await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
} finally {
  // What is pending is pushed first (at most 10 s), then the watcher closes.
  const { unpushed } = await running.stop();
  console.log(`stopped, ${unpushed.reduce((a, b) => a + b, 0)} paths left unpushed`);
}
