// Ctrl-C, SIGTERM or SIGHUP during a one-off run (--once, a listing): the transfer is stopped
// through an AbortSignal (its connection closed, a pull's temp files discarded), then the run
// ends with rsync's closing line for a signal and exit code 20, as rsync's client does.
// Counterpart: rsync main.c sig_int, cleanup.c exit_cleanup (RERR_SIGNAL).
import { EXIT } from '../../protocol/errors.js';
import { closingLine } from '../transfer/output.js';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** How long a stopped transfer may take to clean up before the process leaves anyway. */
const CLEANUP_GRACE_MS = 5000;

/** The closing line of a run stopped by a signal. */
export function signalLine(): string {
  return closingLine(EXIT.SIGNAL);
}

/** Signal handling for one one-off run: install, hand `abort` to the transfer, ask `received`. */
// rsync/main.c: sig_int
export class OnceInterruption {
  private readonly controller = new AbortController();
  private signal: NodeJS.Signals | undefined;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.signal) {
      // A second signal: leave now (the cleanup is under way or stuck).
      this.leave();
      return;
    }
    this.signal = signal;
    this.controller.abort();
    setTimeout(() => this.leave(), CLEANUP_GRACE_MS).unref();
  };

  /** Aborted on the first signal. */
  get abort(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether a signal arrived (the run then ends with `signalLine()` and exit 20). */
  get received(): boolean {
    return this.signal !== undefined;
  }

  install(): this {
    for (const s of SIGNALS) process.on(s, this.onSignal);
    return this;
  }

  uninstall(): void {
    for (const s of SIGNALS) process.off(s, this.onSignal);
  }

  private leave(): never {
    process.stderr.write(`${signalLine()}\n`);
    process.exit(EXIT.SIGNAL);
  }
}
