// The rsync options of issue 13 beyond compression and the receiving side's basics, each checked
// against rsync: the argument list our client sends (captured from a listener that speaks the
// daemon greeting, for rsync's client and ours with the same options), the trees a push into
// rsyncd and a pull from it leave (rsync's run and ours, compared exactly), stock rsync pushing
// into lsyncd serve as into rsyncd, and --bwlimit by the elapsed time of a known size.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, chmod, symlink, readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { pseudoRandom, setTimes } from './helpers/fstree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { BandwidthLimiter, parseBwlimit } from '../src/transfer/bwlimit.js';
import { unsafeSymlink } from '../protocol/unsafe-symlink.js';
import { mappedId, parseNameMap } from '../src/transfer/idmap.js';

const ROOT = process.getuid?.() === 0;
let daemon: TestDaemon;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('xferopt', { push: 'rw', src: 'ro' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

/**
 * The argument list a client sends to a daemon at protocol 32: a listener answers the greeting
 * and the module line with `@RSYNCD: OK`, reads the NUL-terminated list, and hangs up.
 */
async function capturedArgs(client: (port: number) => Promise<RunResult>): Promise<string[]> {
  let captured: string[] | undefined;
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.write('@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n');
    let buf = Buffer.alloc(0);
    let lines = 0;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // Two lines (the client's greeting, the module), then the arguments.
      while (lines < 2) {
        const nl = buf.indexOf(0x0a);
        if (nl === -1) return;
        buf = buf.subarray(nl + 1);
        if (++lines === 2) socket.write('@RSYNCD: OK\n');
      }
      const end = buf.indexOf(Buffer.from([0, 0]));
      if (end === -1 && !(buf.length === 1 && buf[0] === 0)) return;
      captured = buf.subarray(0, end + 1).toString('utf8').split('\0').slice(0, -1);
      socket.destroy();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    await client(port);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
  if (!captured) throw new Error('no argument list captured');
  // The capability letters after `e.` differ between implementations (ours: no incremental recursion).
  return captured.map((a) => (/^-[a-zA-Z]*e\./.test(a) ? a.replace(/e\..*$/, '') : a));
}

async function sameArgs(options: string[], direction: 'push' | 'pull'): Promise<void> {
  const local = join(work, 'args-local');
  await mkdir(local, { recursive: true });
  const remote = (port: number) => `rsync://127.0.0.1:${port}/mod/dir/`;
  // Our push is rsync's -rlpt --delete; our pull is rsync's -rlpt.
  const theirs = await capturedArgs((port) =>
    run('rsync', ['-rlpt', ...(direction === 'push' ? ['--delete'] : []), ...options, ...(direction === 'push' ? [local + '/', remote(port)] : [remote(port), local + '/'])]),
  );
  const mine = await capturedArgs((port) => lsyncd(['--once', '--contimeout', '5', ...options, ...(direction === 'push' ? [local + '/', remote(port)] : [remote(port), local + '/'])]));
  assert.equal(mine, theirs, `${direction} ${options.join(' ')}`);
}

const PUSH_ARGS: string[][] = [
  ['--bwlimit=300'],
  ['--bwlimit=1.5m'],
  ['--chown=nobody:nogroup'],
  ['--usermap=0-99:nobody,*:root', '--groupmap=root:nogroup'],
  ['--safe-links'],
  ['--partial-dir=.part'],
  ['--partial-dir=.part', '--partial'],
  ['-S'],
  ['-m'],
  ['-k'],
  ['--chmod=D755,F644'],
  ['-P'],
  ['-K'],
  ['-O'],
  ['-J'],
  ['-KOJm'],
  ['-O', '-b'],
  ['-O', '--backup-dir=bak'],
  ['-E'],
  ['--no-perms', '-E'],
  ['--delay-updates'],
  ['--delay-updates', '--partial'],
  ['--delay-updates', '--partial-dir=.held'],
  ['--delay-updates', '--partial-dir=.'],
  ['--partial-dir=.'],
  ['-T', '/var/tmp/a dir*'],
  ['--temp-dir=rel'],
];
const PULL_ARGS: string[][] = [
  ['--bwlimit=200'],
  ['-L'],
  ['--copy-unsafe-links'],
  ['--safe-links'],
  ['-R'],
  ['-x'],
  ['-xx'],
  ['-k'],
  ['-kL'],
  ['--files-from=:list.txt'],
  ['--files-from=:list.txt', '--from0'],
  ['--files-from=:list.txt', '--no-relative'],
  ['--chown=nobody:nogroup'],
  ['--chmod=F600'],
  // Our receiver does these itself: rsync's client sends none of them to a sending daemon.
  ['-OJ'],
  ['--no-perms', '-E'],
  ['-K'],
];
for (const options of PUSH_ARGS) {
  test(`push ${options.join(' ')}: the daemon gets rsync's argument list`, () => sameArgs(options, 'push'));
}
for (const options of PULL_ARGS) {
  test(`pull ${options.join(' ')}: the daemon gets rsync's argument list`, () => sameArgs(options, 'pull'));
}

test('--bwlimit: rsync rounding of the rate and its errors', async () => {
  assert.is(parseBwlimit('100'), 100);
  assert.is(parseBwlimit('1.5m'), 1536);
  assert.is(parseBwlimit('1000000b'), 977);
  assert.is(parseBwlimit('0'), 0);
  for (const bad of ['100b', 'x', '1q']) {
    const r = await run('rsync', [`--bwlimit=${bad}`, '/nonexistent/a', '/nonexistent/b']);
    const o = await lsyncd(['--once', `--bwlimit=${bad}`, '/nonexistent/a', 'rsync://127.0.0.1:1/m/']);
    const first = r.stderr.toString().split('\n')[0]!.replace(/^rsync: /, '');
    assert.ok(o.stderr.toString().includes(first), `rsync: ${first}\nours: ${o.stderr}`);
    assert.is(o.status, 1);
  }
});

test('--bwlimit: the limiter sleeps off what runs ahead of the rate, a tenth of a second at a time', async () => {
  let now = 0;
  const slept: number[] = [];
  const limiter = new BandwidthLimiter(100, {
    nowUs: () => now,
    sleep: async (us) => {
      slept.push(us);
      now += us;
    },
  });
  assert.is(limiter.writeMax, 12_800);
  // 5 KiB at 100 KiB/s is 50 ms owed: nothing slept yet.
  await limiter.wrote(5 * 1024);
  assert.equal(slept, []);
  // 5 KiB more at once: 100 ms owed, slept.
  await limiter.wrote(5 * 1024);
  assert.equal(slept, [100_000]);
  // A second later the account is clear: 5 KiB is owed again, not slept.
  now += 1_000_000;
  await limiter.wrote(5 * 1024);
  assert.is(slept.length, 1);
});

/** The seconds a run takes. */
async function timed(f: () => Promise<RunResult>): Promise<{ r: RunResult; seconds: number }> {
  const started = Date.now();
  const r = await f();
  return { r, seconds: (Date.now() - started) / 1000 };
}

test('--bwlimit on our push, our pull, and a pull from lsyncd serve: a known size takes at least its time', async () => {
  // 600 KiB at 200 KiB/s: 3 s at the rate; asserted with a generous margin (at least 2 s).
  const src = join(work, 'bw-src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'data.bin'), pseudoRandom(600 * 1024, 3));
  await setTimes(src);
  const push = await timed(() => lsyncd(['--once', '--bwlimit=200', src + '/', `rsync://127.0.0.1:${daemon.port}/push/bw/`]));
  assert.is(push.r.status, 0, runText(push.r));
  assert.ok(push.seconds >= 2, `push took ${push.seconds} s`);
  const pulled = join(work, 'bw-pulled');
  const pull = await timed(() => lsyncd(['--once', '--bwlimit=200', `rsync://127.0.0.1:${daemon.port}/push/bw/`, pulled + '/']));
  assert.is(pull.r.status, 0, runText(pull.r));
  assert.ok(pull.seconds >= 2, `pull took ${pull.seconds} s`);
  assert.ok((await readFile(join(pulled, 'data.bin'))).equals(await readFile(join(src, 'data.bin'))));
  // lsyncd serve paces what it sends to a client that asks (rsync's pull from it).
  await rm(join(ours.dir, 'src', 'bw'), { recursive: true, force: true });
  await mkdir(join(ours.dir, 'src', 'bw'), { recursive: true });
  await writeFile(join(ours.dir, 'src', 'bw', 'data.bin'), pseudoRandom(600 * 1024, 3));
  const fromServe = await timed(() => run('rsync', ['-rlpt', '--bwlimit=200', daemonUrl(ours, 'src/bw/'), join(work, 'bw-serve') + '/']));
  assert.is(fromServe.r.status, 0, runText(fromServe.r));
  assert.ok(fromServe.seconds >= 2, `rsync's pull from lsyncd serve took ${fromServe.seconds} s`);
  // Without the limit the same pull is far quicker (the limit is what made it slow).
  const unlimited = await timed(() => run('rsync', ['-rlpt', daemonUrl(ours, 'src/bw/'), join(work, 'bw-serve-free') + '/']));
  assert.ok(unlimited.seconds < 1.5, `unlimited pull took ${unlimited.seconds} s`);
});

/** A source with modes to tweak, symlinks safe and unsafe, a nested tree for -R. */
async function linkSource(src: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub/deep'), { recursive: true });
  await mkdir(join(src, 'empty/chain'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'alpha\n');
  await writeFile(join(src, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(src, 'run.sh'), 0o755);
  await writeFile(join(src, 'sub/b.txt'), 'beta\n');
  await writeFile(join(src, 'sub/deep/c.txt'), 'gamma\n');
  await writeFile(join(src, 'outside.txt'), 'the target of an unsafe link\n');
  await symlink('a.txt', join(src, 'safe-link'));
  await symlink('../b.txt', join(src, 'sub/deep/up-link'));
  await symlink('/etc/hostname', join(src, 'absolute-link'));
  await symlink('../../outside.txt', join(src, 'sub/escaping-link'));
  await symlink('sub', join(src, 'dir-link'));
  await writeFile(join(src, 'list.txt'), 'a.txt\nsub/deep/c.txt\n');
  await writeFile(join(src, 'list0.txt'), 'a.txt\0sub/b.txt\0');
  await setTimes(src);
}

async function assertSameTrees(a: string, b: string, message: string): Promise<void> {
  const diff = diffTrees(await snapshot(a), await snapshot(b));
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

const PULL_CASES: string[][] = [
  ['-L'],
  ['--copy-unsafe-links'],
  ['--safe-links'],
  ['--safe-links', '-v'],
  ['-R'],
  ['-x'],
  ['--chmod=D750,Fo-r,Fg+w'],
  ['--chmod=u=rwX,go=', '--chmod=Fo+r'],
  ...(ROOT ? [['--chown=nobody:nogroup'], ['--usermap=root:nobody', '--groupmap=*:nogroup', '-og'], ['--usermap=0-10:65534', '-o', '--numeric-ids']] : []),
];

for (const options of PULL_CASES) {
  test(`pull ${options.join(' ')}: as rsync's pull from rsyncd`, async () => {
    const name = options.join('').replace(/[^a-zA-Z0-9]/g, '');
    const src = join(daemon.modulePath('src'), name);
    await linkSource(src);
    const ref = join(work, 'pull-ref', name);
    const got = join(work, 'pull-ours', name);
    for (const parent of ['pull-ref', 'pull-ours']) await mkdir(join(work, parent), { recursive: true });
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    // -R names the path from the module: the list comes with its directories.
    const from = options.includes('-R') ? `rsync://127.0.0.1:${daemon.port}/src/${name}/sub/deep` : url;
    const r = await run('rsync', ['-rlpt', ...options, from, ref + '/']);
    const o = await lsyncd(['--once', ...options, from, got + '/']);
    // -L meets the dangling links (exit 23 for rsync too): the same code, the same tree.
    assert.ok(r.status === 0 || r.status === 23, runText(r));
    assert.is(o.status, r.status, `rsync: ${runText(r)}\nours: ${runText(o)}`);
    if (options.includes('-v')) assert.ok(o.stdout.toString().includes('ignoring unsafe symlink "sub/escaping-link" -> "../../outside.txt"'), o.stdout.toString());
    await assertSameTrees(ref, got, `pull ${options.join(' ')}`);
  });
}

for (const [list, extra] of [['list.txt', []], ['list0.txt', ['--from0']]] as const) {
  test(`pull --files-from=:${list} ${extra.join(' ')}: the daemon reads the list, as for rsync`, async () => {
    const name = `files-from-${list}`.replace(/\./g, '');
    const src = join(daemon.modulePath('src'), name);
    await linkSource(src);
    // The list on the daemon names paths from the module's root (rsync 3.5's daemon loses the
    // files of a list read for a subdirectory source: it says they vanished, so neither side uses that).
    const sep = list === 'list0.txt' ? '\0' : '\n';
    await writeFile(join(daemon.modulePath('src'), `${name}.${list}`), [`${name}/a.txt`, `${name}/sub/deep/c.txt`, `${name}/dir-link`, ''].join(sep));
    for (const parent of ['pull-ref', 'pull-ours']) await mkdir(join(work, parent), { recursive: true });
    const ref = join(work, 'pull-ref', name);
    const got = join(work, 'pull-ours', name);
    const url = `rsync://127.0.0.1:${daemon.port}/src/`;
    const r = await run('rsync', ['-rlpt', `--files-from=:${name}.${list}`, ...extra, url, ref + '/']);
    const o = await lsyncd(['--once', `--files-from=:${name}.${list}`, ...extra, url, got + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(ref, got, `pull --files-from ${list}`);
  });
}

const PUSH_CASES: string[][] = [
  ['--chmod=D750,Fo-r,Fg+w'],
  ['--chmod=a+rwx', '--chmod=Fo-w'],
  ['--safe-links'],
  ['-m'],
  ['-m', '--no-delete', '--exclude=c.txt'],
  ['-S'],
  ...(ROOT ? [['--chown=nobody:nogroup'], ['--usermap=root:nobody', '--groupmap=*:nogroup']] : []),
];

for (const options of PUSH_CASES) {
  test(`push ${options.join(' ')}: into rsyncd as rsync's push`, async () => {
    const name = options.join('').replace(/[^a-zA-Z0-9]/g, '');
    const src = join(work, 'push-src', name);
    await linkSource(src);
    const url = (to: string) => `rsync://127.0.0.1:${daemon.port}/push/${to}/`;
    const rsyncOptions = options.includes('--no-delete') ? options.filter((o) => o !== '--no-delete') : ['--delete', ...options];
    const r = await run('rsync', ['-rlpt', ...rsyncOptions, src + '/', url(`ref-${name}`)]);
    const o = await lsyncd(['--once', ...options, src + '/', url(`ours-${name}`)]);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(join(daemon.modulePath('push'), `ref-${name}`), join(daemon.modulePath('push'), `ours-${name}`), `push ${options.join(' ')}`);
  });
}

const SERVE_CASES: string[][] = [['--safe-links'], ['--bwlimit=5000'], ...(ROOT ? [['--chown=nobody:nogroup'], ['--usermap=root:nobody', '--groupmap=*:nogroup']] : [])];

for (const options of SERVE_CASES) {
  test(`rsync push ${options.join(' ')}: into lsyncd serve as into rsyncd`, async () => {
    const name = options.join('').replace(/[^a-zA-Z0-9]/g, '');
    const src = join(work, 'serve-src', name);
    await linkSource(src);
    const args = (d: { port: number }) => ['-rlpt', ...options, src + '/', daemonUrl(d, `push/${name}/`)];
    const t = await run('rsync', args(theirs));
    const o = await run('rsync', args(ours));
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(join(theirs.dir, 'push', name), join(ours.dir, 'push', name), `serve ${options.join(' ')}`);
  });
}


test('options that cannot apply, and pull-only options on a push, are refused by name (exit 1)', async () => {
  const src = join(work, 'refuse-src');
  await mkdir(src, { recursive: true });
  const target = `rsync://127.0.0.1:${daemon.port}/push/refused/`;
  const cases: Array<[string[], RegExp]> = [
    [['-e', 'ssh'], /-e\/--rsh: lsyncd talks to rsync daemons over TCP only/],
    [['--rsync-path=/usr/bin/rsync'], /--rsync-path: there is no remote rsync program/],
    [['--files-from=:-'], /Invalid --files-from remote filename/],
    [['-4', '-6'], /-4 and -6 exclude each other/],
    [['--partial-dir=.p', '--inplace', 'PULL'], /--inplace cannot be used with --partial-dir/],
    [['--chmod=Q+x'], /Invalid argument passed to --chmod \(Q\+x\)/],
    [['--usermap=a:b', '--usermap=c:d'], /You can only specify --usermap once/],
    [['--chown=a', '--usermap=c:d'], /--chown conflicts with --usermap/],
  ];
  for (const [given, message] of cases) {
    const options = given.filter((o) => o !== 'PULL');
    const where = given.includes('PULL') ? [`rsync://127.0.0.1:${daemon.port}/src/`, join(work, 'refused-pull') + '/'] : [src + '/', target];
    const o = await lsyncd(['--once', ...options, ...where]);
    assert.is(o.status, 1, `${options.join(' ')}: ${runText(o)}`);
    assert.match(o.stderr.toString(), message, options.join(' '));
  }
  // A local list is forwarded on a pull (test/files-from): a missing one stops us before connecting.
  const local = await lsyncd(['--once', '--files-from=no-such-list', `rsync://127.0.0.1:${daemon.port}/src/`, join(work, 'x') + '/']);
  assert.is(local.status, 1);
  assert.match(local.stderr.toString(), /failed to open files-from file no-such-list/);
});

test('-4, -6 and --address: the connection takes the family and the local address asked for', async () => {
  const src = join(work, 'family-src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'f'), 'f\n');
  const target = `rsync://127.0.0.1:${daemon.port}/push/family/`;
  const v4 = await lsyncd(['--once', '-4', '--address', '127.0.0.1', src + '/', target]);
  assert.is(v4.status, 0, runText(v4));
  // An IPv4 address under -6 cannot be reached, as with rsync (a socket error, exit 10).
  const r6 = await run('rsync', ['-6', '-r', src + '/', target]);
  const v6 = await lsyncd(['--once', '-6', src + '/', target]);
  assert.is(v6.status, r6.status, `rsync: ${runText(r6)}\nours: ${runText(v6)}`);
  // Binding to an address this host does not have fails before anything is sent (exit 10).
  const r = await run('rsync', ['--address=192.0.2.1', '-r', src + '/', target]);
  const o = await lsyncd(['--once', '--address=192.0.2.1', src + '/', target]);
  assert.is(o.status, r.status, `rsync: ${runText(r)}\nours: ${runText(o)}`);
});

test('-8: names with high-bit bytes are printed unescaped, as rsync -8 prints them', async () => {
  const name = 'eight';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  await writeFile(Buffer.from(join(src, 'caf\xe9.txt'), 'latin1'), 'latin-1 name\n');
  await writeFile(join(src, 'café-utf8.txt'), 'utf-8 name\n');
  await setTimes(src);
  const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
  for (const [locale, flags] of [['C', ['-8']], ['C', []], ['C.UTF-8', ['-8']]] as const) {
    const env = { LC_ALL: locale };
    const r = await run('rsync', ['-rlpt', '-v', ...flags, url, join(work, `eight-ref-${locale}-${flags.length}`) + '/'], env);
    const o = await lsyncd(['--once', '-v', ...flags, url, join(work, `eight-ours-${locale}-${flags.length}`) + '/'], env);
    assert.is(o.status, 0, runText(o));
    const names = (out: Buffer) => out.toString('latin1').split('\n').filter((l) => l.includes('caf'));
    assert.equal(names(o.stdout), names(r.stdout), `${locale} ${flags.join(' ')}`);
  }
});

test('unsafeSymlink: rsync util1.c unsafe_symlink cases', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a.txt', 'link', false],
    ['/etc/passwd', 'link', true],
    ['', 'link', true],
    ['../x', 'link', true],
    ['../x', 'dir/link', false],
    ['../../x', 'dir/link', true],
    ['a/../b', 'link', true],
    ['../../a', 'a/b/link', false],
    ['sub/..', 'link', true],
    ['./a', 'link', false],
    ['..', 'd/link', false],
    ['..//../x', 'a/b/link', false],
  ];
  for (const [target, name, unsafe] of cases) assert.is(unsafeSymlink(Buffer.from(target), Buffer.from(name)), unsafe, `${name} -> ${target}`);
});

test('parseNameMap: rsync usermap syntax, first match wins, unknown names reported', () => {
  const local = new Map([
    ['root', 0],
    ['nobody', 65534],
  ]);
  const errors: string[] = [];
  const rules = parseNameMap('0-10:nobody,ro*:root,bob:42,alice:ghost', 'user', local, (t) => errors.push(t));
  assert.equal(errors, ['Unknown --usermap name on receiver: ghost']);
  assert.is(mappedId(rules, 5, 'whoever'), 65534);
  assert.is(mappedId(rules, 500, 'robin'), 0);
  assert.is(mappedId(rules, 500, 'bob'), 42);
  assert.is(mappedId(rules, 500, 'alice'), undefined);
  assert.throws(() => parseNameMap('nocolon', 'user', local, () => {}), /No colon found in --usermap: nocolon/);
  assert.throws(() => parseNameMap('1-2-3:root', 'group', local, () => {}), /Invalid number in --groupmap: 1-2-3/);
  assert.throws(() => parseNameMap('a:', 'user', local, () => {}), /No name found after colon --usermap: a:/);
});

test.run();
