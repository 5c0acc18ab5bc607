// `lsyncd demo [SOURCE]`: the main job end to end on one machine with nothing else installed — our
// own rsync daemon (`lsyncd serve`) on a free loopback port, with a module in a temporary
// directory, and a live mirror of SOURCE into it (a sample tree when no SOURCE is given). It says
// what it does, then keeps running: every edit under SOURCE shows up in the module within
// milliseconds. Ctrl-C (or --for SECONDS) stops both.
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_TRANSFER } from '../../protocol/args.js';
import { EXIT } from '../../protocol/errors.js';
import { parseConfig } from '../serve/config.js';
import { startDaemon } from '../serve/daemon.js';
import { DaemonLog } from '../serve/log.js';
import { startLiveMirror } from '../live/index.js';
import { moduleConfigText } from './serve.js';

/** A few files to mirror when the user names no SOURCE. */
function sampleTree(root: string): void {
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'README.txt'), 'Edit me, add files, delete some: the mirror follows.\n');
  writeFileSync(join(root, 'docs', 'notes.txt'), 'a file in a subdirectory\n');
}

export async function demoMain(args: readonly string[], version: string): Promise<number> {
  const cli = new Command('lsyncd demo')
    .description('run lsyncd serve on a free loopback port and live-mirror SOURCE (default: a sample tree) into one of its modules')
    .argument('[SOURCE]', 'the directory to mirror (default: a new sample tree in a temporary directory)')
    .option('--for <SECONDS>', 'stop after SECONDS (default: run until Ctrl-C)', (v) => Number(v))
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    cli.parse(args, { from: 'user' });
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === 'commander.helpDisplayed' || code === 'commander.help' ? EXIT.OK : EXIT.SYNTAX;
  }
  const seconds = cli.opts<{ for?: number }>().for;
  const work = mkdtempSync(join(tmpdir(), 'lsyncd-demo-'));
  let source = cli.args[0];
  if (source === undefined) {
    source = join(work, 'source');
    sampleTree(source);
  } else if (!existsSync(source) || !statSync(source).isDirectory()) {
    process.stderr.write(`lsyncd demo: ${source} is not a directory\n`);
    return EXIT.SYNTAX;
  }
  source = resolve(source);
  const moduleDir = join(work, 'mirror');
  mkdirSync(moduleDir);
  const say = (text: string) => process.stdout.write(`lsyncd demo: ${text}\n`);

  // 1. Our daemon, serving one writable module.
  const config = parseConfig(moduleConfigText([`mirror=${moduleDir}`], false), { file: 'lsyncd demo' });
  const daemon = await startDaemon({ config, log: new DaemonLog(), version, port: 0, address: '127.0.0.1' });
  const url = `rsync://127.0.0.1:${daemon.port}/mirror/`;
  say(`lsyncd serve is an rsync daemon on 127.0.0.1:${daemon.port}, module "mirror" = ${moduleDir}`);
  // 2. The live mirror into it.
  const mirror = await startLiveMirror({
    source,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'mirror', path: '' }, session: {} }],
    transfer: DEFAULT_TRANSFER,
    onLog: (level, message) => {
      if (level !== 'debug') say(message);
    },
  });
  await mirror.ready;
  say(`mirroring ${source}/ -> ${url} (no rsync binary involved)`);
  say(`try: echo hello > ${join(source, 'hello.txt')} ; ls ${moduleDir}`);
  say(seconds ? `stopping in ${seconds} s` : 'Ctrl-C stops the mirror and the daemon');
  await new Promise<void>((done) => {
    if (seconds) setTimeout(done, seconds * 1000).unref();
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
  await mirror.stop({ timeoutMs: 5000 });
  await daemon.close();
  say(`stopped; the mirror is left in ${moduleDir}`);
  return EXIT.OK;
}
