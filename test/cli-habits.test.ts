// The command line's habits (issue 11): lsyncd 2's single-dash options and `-rsync`, rsync's
// `-h` (help alone, human-readable otherwise) and bare usage, FILE.lua, `--once` checking every
// target before the first push (defect 6), and the password: a hint without a terminal, a
// `Password: ` prompt with no echo on one (defect 11). Compared with rsync where rsync has the habit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, AUTH_USER, AUTH_PASSWORD, type TestDaemon } from './helpers/daemon.js';
import { run, lsyncd, CLI } from './helpers/cli.js';
import { setTimes, pseudoRandom } from './helpers/fstree.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { mapLsyncd2Options, asksForHelp } from '../src/cli/habits.js';

let daemon: TestDaemon;
let work: string;
const noPassword = { RSYNC_PASSWORD: undefined as unknown as string };

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-habits-'));
  await mkdir(join(work, 'src', 'sub'), { recursive: true });
  await writeFile(join(work, 'src', 'a.txt'), 'alpha\n');
  await writeFile(join(work, 'src', 'sub', 'big.bin'), pseudoRandom(3_000_000));
  await setTimes(join(work, 'src'));
});

test.after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const addr = (path: string) => `rsync://${daemon.host}:${daemon.port}/${path}`;

test('lsyncd 2 options map onto ours', () => {
  assert.equal(mapLsyncd2Options(['-nodaemon', '-delay', '0', '-log', 'all', '-logfile', 'F', '-pidfile', 'P', '-insist', '-rsync', 's/', 'h::m/']), [
    '--nodaemon',
    '--delay',
    '0',
    '--debug',
    '--logfile',
    'F',
    '--pidfile',
    'P',
    '--insist',
    's/',
    'h::m/',
  ]);
  assert.equal(mapLsyncd2Options(['-onepass', '-log', 'scarce', '-rsync', 's', 'a::m/', '-rsync', 's', 'b::m/']), ['--once', '--scarce', 's', 'a::m/', 'b::m/']);
  assert.throws(() => mapLsyncd2Options(['-rsync', 's', 'a::m/', '-rsync', 't', 'b::m/']), /one SOURCE per run/);
  assert.throws(() => mapLsyncd2Options(['-rsyncssh', 's', 'h', 'd']), /not available/);
  assert.throws(() => mapLsyncd2Options(['-delay']), /needs a value/);
  // rsync's own short clusters and long options pass through.
  assert.equal(mapLsyncd2Options(['-avh', '--delete', 'x', 'y']), ['-avh', '--delete', 'x', 'y']);
  assert.ok(asksForHelp(['-h']));
  assert.not.ok(asksForHelp(['-avh']));
  assert.not.ok(asksForHelp(['-h', 'a', 'b']));
});

test('lsyncd -onepass -rsync SOURCE TARGET pushes once, as --once does', async () => {
  const r = await lsyncd(['-onepass', '-log', 'scarce', '-rsync', join(work, 'src') + '/', addr('push/onepass/')]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(await snapshot(daemon.modulePath('push') + '/onepass'), await snapshot(join(work, 'src')));
});

test('bare lsyncd prints the usage on stderr and exits 1, as bare rsync does', async () => {
  const ours = await lsyncd([]);
  const theirs = await run('rsync', []);
  assert.is(theirs.status, 1);
  assert.is(ours.status, theirs.status);
  assert.is(ours.stdout.length, 0);
  assert.is(theirs.stdout.length, 0);
  assert.match(ours.stderr, /^Usage: lsyncd/);
  assert.not.match(ours.stderr, /missing required argument/);
});

test('-h alone is the help (stdout, exit 0), as in rsync; the help lists the live mode first', async () => {
  const ours = await lsyncd(['-h']);
  const theirs = await run('rsync', ['-h']);
  assert.is(theirs.status, 0);
  assert.is(ours.status, 0);
  const help = ours.stdout.toString();
  assert.match(help, /^Usage: lsyncd/);
  const modes = help.split('\n').filter((l) => /^ {2}lsyncd /.test(l));
  assert.match(modes[0]!, /SOURCE TARGET\.\.\. +live mirror/);
  assert.match(modes[1]!, /%userwww/);
  assert.match(help, /--once .*push .* or pull/s);
  // Wrapped cleanly: nothing beyond 80 columns, no description line broken mid-sentence at column 0.
  for (const line of help.split('\n')) assert.ok(line.length <= 80, line);
});

test('-avh is human-readable, not help: the summary sizes as rsync prints them', async () => {
  const ours = await lsyncd(['--once', '-avh', join(work, 'src') + '/', addr('push/human/')]);
  assert.is(ours.status, 0, ours.stderr);
  const theirs = await run('rsync', ['-avh', join(work, 'src') + '/', addr('push/human-ref/')]);
  assert.is(theirs.status, 0, theirs.stderr);
  const total = (out: Buffer) => /total size is (\S+)/.exec(out.toString())?.[1];
  assert.is(total(theirs.stdout), '3.00M');
  assert.is(total(ours.stdout), total(theirs.stdout));
  assert.match(ours.stdout.toString(), /^sent \d+\.\d\dM bytes {2}received \d+(\.\d\dK)? bytes {2}\d+(\.\d\d[KMG])? bytes\/sec$/m);
  const stats = await lsyncd(['--once', '-h', '--stats', '-I', join(work, 'src') + '/', addr('push/human/')]);
  assert.match(stats.stdout.toString(), /^Total file size: 3\.00M bytes$/m);
});

test("rsync's bundled letters are taken (-rlptv, -rlptgoD, -avz), and -p / -t after --no-perms / --no-times turn them on again, as rsync reads them", async () => {
  const src = join(work, 'src') + '/';
  await chmod(join(work, 'src', 'a.txt'), 0o604);
  try {
    for (const [i, args] of [['-rlptv'], ['-rlptgoD'], ['-avz'], ['--no-perms', '-p'], ['--no-times', '-t'], ['--no-perms'], ['--no-times']].entries()) {
      const ours = await lsyncd(['--once', ...args, src, addr(`push/letters-${i}/`)]);
      assert.is(ours.status, 0, `${args.join(' ')}: ${ours.stderr}`);
      // rsync with the same letters onto an empty path (ours is -rlpt by default: rsync gets those first).
      const theirs = await run('rsync', ['-rlpt', ...args.filter((a) => a !== '-v'), src, addr(`push/letters-ref-${i}/`)]);
      assert.is(theirs.status, 0, theirs.stderr.toString());
      const want = await snapshot(join(daemon.modulePath('push'), `letters-ref-${i}`));
      const got = await snapshot(join(daemon.modulePath('push'), `letters-${i}`));
      // Without times both copies bear the time they were written: that they are not the source's is the check.
      const noTimes = args.at(-1) === '--no-times';
      assert.equal(diffTrees(want, got, { ignore: noTimes ? ['uid', 'gid', 'mtimeNs'] : ['uid', 'gid'] }), [], args.join(' '));
      if (noTimes) assert.is.not(got.get('a.txt')?.mtimeNs, (await snapshot(join(work, 'src'))).get('a.txt')?.mtimeNs);
    }
  } finally {
    await chmod(join(work, 'src', 'a.txt'), 0o644);
  }
});

test('lsyncd FILE.lua is read as a config file: a missing one says so, not "not a daemon address"', async () => {
  const r = await lsyncd(['/etc/lsyncd/lsyncd.conf.lua']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /lsyncd\.conf\.lua: cannot read the config file: ENOENT/);
  assert.not.match(r.stderr, /not a daemon address/);
});

test('--once with several targets checks every one before pushing to any (defect 6)', async () => {
  for (const bad of ['127.0.0.1:push/x', `rsync://${daemon.host}:${daemon.port}/`]) {
    const r = await lsyncd(['--once', join(work, 'src') + '/', addr('push/first/'), addr('push/second/'), bad]);
    assert.is(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(bad), r.stderr);
    assert.not.ok(existsSync(daemon.modulePath('push') + '/first'), 'the first target was pushed before the bad one was seen');
    assert.not.ok(existsSync(daemon.modulePath('push') + '/second'));
  }
});

test('no password and no terminal: the refusal names RSYNC_PASSWORD and --password-file (defect 11)', async () => {
  // setsid: no controlling terminal, whatever the test runs under.
  const ours = await run('setsid', [process.execPath, CLI, `${AUTH_USER}@${daemon.host}::secure/`, '--port', String(daemon.port)], noPassword);
  assert.is(ours.status, 5, ours.stderr);
  assert.match(ours.stderr, /@ERROR: auth failed on module secure/);
  assert.match(ours.stderr, /RSYNC_PASSWORD/);
  assert.match(ours.stderr, /--password-file/);
  // With a password given, no hint.
  const wrong = await run('setsid', [process.execPath, CLI, `${AUTH_USER}@${daemon.host}::secure/`, '--port', String(daemon.port)], { RSYNC_PASSWORD: 'wrong' });
  assert.is(wrong.status, 5);
  assert.not.match(wrong.stderr, /RSYNC_PASSWORD/);
});

/** Runs `command` on a pseudo-terminal (util-linux script); types `typed` once `prompt` shows. */
function onTerminal(command: string, prompt: string, typed: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString('latin1');
      if (!sent && output.includes(prompt)) {
        sent = true;
        // Give the prompt a moment to switch echo off after writing itself.
        setTimeout(() => child.stdin.write(typed), 200);
      }
    });
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

test('on a terminal, a missing password is asked for: "Password: " with no echo (defect 11)', async () => {
  const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const target = `${AUTH_USER}@${daemon.host}::secure/`;
  const env = 'env -u RSYNC_PASSWORD';
  const ours = await onTerminal(`${env} ${quote(process.execPath)} ${quote(CLI)} --port ${daemon.port} ${quote(target)}`, 'Password: ', `${AUTH_PASSWORD}\r`);
  assert.is(ours.status, 0, ours.output);
  assert.ok(ours.output.includes('Password: '), ours.output);
  assert.not.ok(ours.output.includes(AUTH_PASSWORD), 'the password was echoed');
  const theirs = await onTerminal(`${env} rsync --port ${daemon.port} ${quote(target)}`, 'Password: ', `${AUTH_PASSWORD}\r`);
  assert.is(theirs.status, 0, theirs.output);
  // The same listing after the prompt.
  const after = (s: string) => s.slice(s.indexOf('Password: ') + 'Password: '.length).replace(/\r/g, '').trim();
  assert.is(after(ours.output), after(theirs.output));
});

test.run();
