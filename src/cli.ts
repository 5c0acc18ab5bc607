#!/usr/bin/env node
// The command line: the only file that touches commander, argv, stdout/stderr and exit codes.
// It builds typed options and calls the library.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RsyncError, UsageError, DaemonRefusalError, EXIT } from '../protocol/errors.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../protocol/daemon.js';
import { isDaemonAddress, parseDaemonAddress, DEFAULT_PORT } from './target.js';
import { listModules, splitMotd } from './client.js';
import { passwordSource } from './password.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** What each exit code means, for the closing error line (rsync's exit codes, our words). */
const EXIT_MEANING: Record<number, string> = {
  [EXIT.SYNTAX]: 'syntax or usage error',
  [EXIT.PROTOCOL]: 'protocol incompatibility',
  [EXIT.UNSUPPORTED]: 'requested action not supported',
  [EXIT.STARTCLIENT]: 'error starting the daemon session',
  [EXIT.SOCKETIO]: 'error in socket I/O',
  [EXIT.FILEIO]: 'error in file I/O',
  [EXIT.STREAMIO]: 'error in the rsync protocol data stream',
  [EXIT.PARTIAL]: 'some files were not transferred',
  [EXIT.VANISHED]: 'some source files vanished',
  [EXIT.TIMEOUT]: 'timeout in data send/receive',
  [EXIT.CONTIMEOUT]: 'timeout waiting for the daemon connection',
};

export interface CliOptions {
  port?: number;
  motd: boolean;
  passwordFile?: string;
  protocol?: number;
  contimeout?: number;
  timeout?: number;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function buildProgram(): Command {
  return new Command('lsyncd')
    .description(
      'Keep an rsync daemon module a live mirror of local trees, speaking the rsync protocol itself.\n' +
        'With a single daemon address and no module, list the daemon\'s modules.',
    )
    .usage('[options] rsync://[USER@]HOST[:PORT]/ | [USER@]HOST::')
    .argument('<address>', 'rsync daemon address')
    .version(`lsyncd ${pkg.version} (rsync daemon protocol ${MIN_PROTOCOL_VERSION}–${PROTOCOL_VERSION})`, '-V, --version')
    .addOption(new Option('--port <PORT>', `daemon TCP port for HOST:: addresses (default ${DEFAULT_PORT})`).argParser(integer(1, 65535)))
    .option('--no-motd', "don't print the daemon's message of the day")
    .option('--password-file <FILE>', 'read the daemon password from FILE (first line; must not be readable by others)')
    .addOption(
      new Option('--protocol <N>', `speak protocol N (${MIN_PROTOCOL_VERSION}–${PROTOCOL_VERSION}) as an older rsync would`).argParser(
        integer(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
      ),
    )
    .addOption(new Option('--contimeout <SECONDS>', 'give up connecting (and waiting for the greeting) after SECONDS').argParser(integer(0, 1e6)))
    .addOption(new Option('--timeout <SECONDS>', 'give up after SECONDS without I/O').argParser(integer(0, 1e6)))
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', '\nThe password comes from --password-file, else $RSYNC_PASSWORD.\nExit codes are rsync\'s (5: daemon refused, 10: socket error, 30/35: timeouts).')
    .showHelpAfterError(false)
    .exitOverride();
}

async function run(address: string, options: CliOptions): Promise<number> {
  if (!isDaemonAddress(address)) {
    throw new UsageError(`${address} is not a daemon address (rsync://HOST/ or HOST::); pushing a local tree is not available yet`);
  }
  const target = parseDaemonAddress(address, options.port ?? DEFAULT_PORT);
  if (target.module) {
    throw new UsageError(`listing the contents of module ${target.module} is not available yet; give HOST:: to list modules`);
  }
  const lines = await listModules({
    host: target.host,
    port: target.port,
    ...(target.user !== undefined && { user: target.user }),
    ...(options.protocol !== undefined && { protocol: options.protocol }),
    ...(options.contimeout !== undefined && { contimeout: options.contimeout }),
    ...(options.timeout !== undefined && { timeout: options.timeout }),
    password: passwordSource(options.passwordFile),
  });
  const shown = options.motd ? lines : splitMotd(lines).modules;
  process.stdout.write(Buffer.concat(shown.flatMap((line) => [line, Buffer.from('\n')])));
  return EXIT.OK;
}

function report(error: unknown): number {
  if (error instanceof DaemonRefusalError) {
    process.stderr.write(`${error.daemonText}\n`);
  } else if (error instanceof RsyncError) {
    process.stderr.write(`lsyncd: ${error.message}\n`);
  } else {
    process.stderr.write(`lsyncd: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.PROTOCOL;
  }
  const meaning = EXIT_MEANING[error.exitCode];
  process.stderr.write(`lsyncd error: ${meaning ?? 'failed'} (code ${error.exitCode})\n`);
  return error.exitCode;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    program.parse(argv);
  } catch (e) {
    const code = (e as { code?: string; exitCode?: number }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return EXIT.OK;
    return EXIT.SYNTAX;
  }
  const options = program.opts<CliOptions>();
  const address = program.args[0]!;
  try {
    return await run(address, options);
  } catch (e) {
    return report(e);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.exitCode = report(e);
  },
);
