// --bwlimit: rsync's sleep-based limiter for one connection's writes (docs/protocol.md [args-content]:
// the rate travels as --bwlimit=KiB). Writes go out in pieces of at most an eighth of a second's
// worth; after each, the bytes owed beyond the rate are slept off once they add up to a tenth of a
// second, as rsync does (a sleep per small write would oversleep).
// Counterpart: rsync io.c sleep_for_bwlimit, options.c (OPT_BWLIMIT, bwlimit_writemax).
import { parseSizeArg } from '../../protocol/server-args.js';
import { UsageError } from '../../protocol/errors.js';

const ONE_SECOND_US = 1_000_000;
/** Below this owed delay nothing is slept: it carries over to the next write. */
const MIN_SLEEP_US = ONE_SECOND_US / 10;

/**
 * A --bwlimit value (`100`, `1.5m`, `500K`, `0` for none) as rsync reads it: the size in bytes
 * (K by default, at least 512 unless 0), rounded to whole KiB/s. Errors are rsync's texts.
 */
// rsync/options.c: parse_arguments (OPT_BWLIMIT)
export function parseBwlimit(text: string): number {
  let bytes: number;
  try {
    bytes = parseSizeArg(text, 'K', 'bwlimit', 512, -1, true);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return Math.floor((bytes + 512) / 1024);
}

/** The largest single write under a limit of `kibPerSecond` (an eighth of a second's worth, at least 512). */
// rsync/options.c: parse_arguments (bwlimit_writemax)
export function bwlimitWriteMax(kibPerSecond: number): number {
  return Math.max(kibPerSecond * 128, 512);
}

/** The limiter of one connection: call wrote() after each piece went out, and await it. */
export class BandwidthLimiter {
  readonly kibPerSecond: number;
  readonly writeMax: number;
  private owed = 0;
  private priorUs = 0;
  private readonly nowUs: () => number;
  private readonly sleep: (us: number) => Promise<void>;

  constructor(kibPerSecond: number, clock: { nowUs?: () => number; sleep?: (us: number) => Promise<void> } = {}) {
    if (!Number.isInteger(kibPerSecond) || kibPerSecond <= 0) throw new RangeError(`bad bandwidth limit ${kibPerSecond}`);
    this.kibPerSecond = kibPerSecond;
    this.writeMax = bwlimitWriteMax(kibPerSecond);
    this.nowUs = clock.nowUs ?? (() => Number(process.hrtime.bigint() / 1000n));
    this.sleep = clock.sleep ?? ((us) => new Promise((resolve) => setTimeout(resolve, us / 1000)));
  }

  /** `bytes` were written: sleep off what runs ahead of the rate (only once a tenth of a second is owed). */
  // rsync/io.c: sleep_for_bwlimit
  async wrote(bytes: number): Promise<void> {
    const perUs = this.kibPerSecond / (ONE_SECOND_US / 1024);
    this.owed += bytes;
    const start = this.nowUs();
    if (this.priorUs) this.owed = Math.max(0, this.owed - Math.floor((start - this.priorUs) * perUs));
    const sleepUs = Math.floor(this.owed / perUs);
    if (sleepUs < MIN_SLEEP_US) {
      this.priorUs = start;
      return;
    }
    await this.sleep(sleepUs);
    this.priorUs = this.nowUs();
    // Slept longer than asked: the surplus counts as time already spent at the rate.
    this.owed = Math.floor((sleepUs - (this.priorUs - start)) * perUs);
  }
}
