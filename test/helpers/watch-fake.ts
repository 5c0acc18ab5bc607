// A stand-in for the native addon: watches are bookkept by path, and the test feeds the
// watcher synthetic kernel batches. Lets the suites drive cases the kernel will not produce
// on demand (unmount, split rename halves, IN_IGNORED ordering).
import { existsSync, statSync } from 'node:fs';
import { encodeRecords } from '../../src/watcher/decode.js';
import type { InotifyAddon, InotifyHandle } from '../../src/addon.js';

export interface FakeRecord {
  wd: number;
  mask: number;
  cookie?: number;
  name?: string;
}

export class FakeInotify implements InotifyHandle {
  static last: FakeInotify | undefined;
  readonly watched = new Map<string, number>();
  readonly removed: number[] = [];
  readonly added: string[] = [];
  fd = 1000;
  private nextWd = 1;

  constructor(private readonly onBatch: (raw: Buffer | Error) => void) {
    FakeInotify.last = this;
  }

  addWatch(path: string | Buffer, _mask: number): number {
    const p = path.toString();
    if (!existsSync(p)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    if (!statSync(p).isDirectory()) throw Object.assign(new Error(`ENOTDIR: ${p}`), { code: 'ENOTDIR' });
    this.added.push(p);
    let wd = this.watched.get(p);
    if (wd === undefined) {
      wd = this.nextWd++;
      this.watched.set(p, wd);
    }
    return wd;
  }

  removeWatch(wd: number): void {
    this.removed.push(wd);
  }

  /** The wd of an absolute path. */
  wd(path: string): number {
    const wd = this.watched.get(path);
    if (wd === undefined) throw new Error(`not watched: ${path}`);
    return wd;
  }

  /** Make the next addWatch of this path get a new wd (a different inode there). */
  forget(path: string): void {
    this.watched.delete(path);
  }

  feed(records: FakeRecord[]): void {
    this.onBatch(encodeRecords(records));
  }

  pause(): void {}
  resume(): void {}
  ref(): void {}
  unref(): void {}
  close(): void {
    this.fd = -1;
  }
}

export const fakeAddon: InotifyAddon = { Inotify: FakeInotify };
