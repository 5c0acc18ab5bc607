// The command lines people already type, mapped onto ours before commander parses them:
// lsyncd 2's single-dash long options and `-rsync SOURCE TARGET`, and rsync's `-h` (help only
// when it stands alone; inside `-avh` it means human-readable). Counterpart: lsyncd 2's
// lsyncd.lua (its options table) and rsync options.c (the lone -h check).
import { UsageError } from '../../protocol/errors.js';

/** lsyncd 2's options that take no value, and what they are here. */
const LSYNCD2_FLAGS: Readonly<Record<string, string>> = {
  '-nodaemon': '--nodaemon',
  '-insist': '--insist',
  '-onepass': '--once',
  '-help': '--help',
  '-version': '--version',
};

/** lsyncd 2's options that take one value, and what they are here. */
const LSYNCD2_VALUED: Readonly<Record<string, string>> = {
  '-delay': '--delay',
  '-logfile': '--logfile',
  '-pidfile': '--pidfile',
};

/**
 * lsyncd 2's options as ours: `-nodaemon` is `--nodaemon`, `-delay N` is `--delay N`, `-log all`
 * is `--debug`, `-log scarce` is `--scarce`, `-onepass` is `--once`; `-rsync SOURCE TARGET` (one or
 * more, all from the same SOURCE) gives the positional SOURCE TARGET...; `-rsyncssh` and `-direct`
 * are refused with a reason. Anything after `--` is left alone.
 */
// lsyncd/lsyncd.lua: the options table of lsyncd 2's command line
export function mapLsyncd2Options(args: readonly string[]): string[] {
  const out: string[] = [];
  let source: string | undefined;
  const targets: string[] = [];
  const value = (i: number, option: string): string => {
    const v = args[i + 1];
    if (v === undefined) throw new UsageError(`${option} needs a value`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (LSYNCD2_FLAGS[arg]) out.push(LSYNCD2_FLAGS[arg]);
    else if (LSYNCD2_VALUED[arg]) out.push(LSYNCD2_VALUED[arg], value(i++, arg));
    else if (arg === '-log') {
      const level = value(i++, arg);
      if (level === 'all') out.push('--debug');
      else if (level === 'scarce') out.push('--scarce');
      else if (level !== 'Normal' && level !== 'normal') throw new UsageError(`-log ${level}: lsyncd 2's log categories are not kept; use -log all (--debug) or -log scarce (--scarce)`);
    } else if (arg === '-rsync') {
      const from = value(i, arg);
      const to = value(i + 1, arg);
      i += 2;
      if (source !== undefined && source !== from) throw new UsageError(`-rsync: one SOURCE per run (${source} and ${from} given); start one lsyncd per source`);
      source = from;
      targets.push(to);
    } else if (arg === '-rsyncssh' || arg === '-direct') {
      throw new UsageError(`${arg} is not available: lsyncd speaks to an rsync daemon (use -rsync SOURCE HOST::MODULE/PATH/)`);
    } else if (arg === '-runner') {
      throw new UsageError('-runner is not available: there is no Lua core to load');
    } else out.push(arg);
  }
  return source === undefined ? out : [...out, source, ...targets];
}

/**
 * rsync's rule for -h: alone (`lsyncd -h`) it asks for the help, anywhere else (`-avh`, `-h`
 * with other arguments) it means --human-readable, as in rsync 3.
 */
// rsync/options.c: parse_arguments (the "human_readable > 1 && argc == 2" check)
export function asksForHelp(args: readonly string[]): boolean {
  return args.length === 1 && args[0] === '-h';
}
