// protocol/chmod.ts against rsync itself: for each --chmod text and each mode of a fixture tree,
// the mode tweakMode gives must be the one `rsync -r --chmod=TEXT --list-only` lists (the
// sender's send_file_name applies the clauses once), and every text rsync refuses we refuse.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChmodSyntaxError, parseChmod, tweakMode, MAX_CHMOD_TEXT } from '../protocol/chmod.js';
import { permString } from '../src/transfer/output.js';
import { S_IFDIR, S_IFREG } from '../protocol/modes.js';

const ROOT = process.getuid?.() === 0;
const UMASK = process.umask();

/** Files and directories with the modes the clauses must handle (set-id and sticky as root only). */
const FILE_MODES = [0o644, 0o755, 0o741, 0o600, 0o007, 0o000, 0o711, 0o444, ...(ROOT ? [0o4755, 0o2644, 0o1644] : [])];
const DIR_MODES = [0o755, 0o700, 0o750, 0o2775, 0o1777, 0o555];

/** rsync's documented examples, chmod(1)'s forms, copies, octal, and the umask-sensitive ones. */
const TEXTS = [
  'Dg+s,ug+w,Fo-w,+X',
  'D2775,F664',
  'D755,F644',
  'g=u',
  'o=g',
  'g-o',
  'g=o,o=',
  'u=rwX',
  'go-w',
  'a+rX',
  'a=r',
  '+x',
  '=r',
  '-w',
  'u+s',
  'g+s',
  'a+s',
  '+s',
  '+t',
  'o-t',
  'a-s',
  'ug=rw',
  'a+X',
  'F+X',
  'D+X',
  'Fu+x,Dg-x',
  'u=',
  '=',
  '+',
  '0',
  '7777',
  'D0700',
  'ugo=rwxst',
  'g=u,u=o',
  'o+u',
  'go=',
  'uD+w',
];

/** Texts rsync refuses: no operator, both D and F, letters with a copy, bad octal, empty clauses. */
const BAD = ['', 'u', 'D', 'Q', 'u+q', 'DF+x', 'FD+x', 'g=ur', 'g=rwu', 'g=uo', 'u+7', '8', '17777', 'u7', '7u', '+x,', ',+x', 'a+x,,g-w', 'u+x g-w', 'x+r'];

let dir: string;
const modeOf = new Map<string, number>();

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'lsyncd-chmod-'));
  for (const m of FILE_MODES) {
    const name = `f${m.toString(8)}`;
    writeFileSync(join(dir, name), '');
    chmodSync(join(dir, name), m);
    modeOf.set(name, S_IFREG | m);
  }
  for (const m of DIR_MODES) {
    const name = `d${m.toString(8)}`;
    mkdirSync(join(dir, name));
    chmodSync(join(dir, name), m);
    modeOf.set(name, S_IFDIR | m);
  }
  modeOf.set('.', lstatSync(dir).mode);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

/** name → permission string, as `rsync --list-only` shows it with the clauses applied. */
function rsyncListing(text: string): Map<string, string> {
  const r = spawnSync('rsync', ['--no-r', '-d', `--chmod=${text}`, '--list-only', `${dir}/`], { encoding: 'utf8' });
  assert.is(r.status, 0, `rsync --chmod=${text}: ${r.stderr}`);
  const listing = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S{10})\s+[\d,]+ \S+ \S+ (.*)$/.exec(line);
    if (m) listing.set(m[2]!, m[1]!);
  }
  return listing;
}

for (const text of TEXTS) {
  test(`--chmod=${text}: every mode as rsync gives it`, () => {
    const modes = parseChmod(text, UMASK);
    const expected = rsyncListing(text);
    assert.is(expected.size, modeOf.size, 'rsync listed every fixture');
    for (const [name, mode] of modeOf) {
      assert.is(permString(tweakMode(mode, modes)), expected.get(name), `${name} (${mode.toString(8)})`);
    }
  });
}

for (const text of BAD) {
  test(`--chmod=${JSON.stringify(text)} is refused, as rsync refuses it`, () => {
    const r = spawnSync('rsync', [`--chmod=${text}`, '--list-only', `${dir}/`], { encoding: 'utf8' });
    assert.is(r.status, 1, `rsync took ${JSON.stringify(text)}`);
    assert.match(r.stderr, 'Invalid argument passed to --chmod');
    const e = (() => {
      try {
        parseChmod(text, UMASK);
      } catch (err) {
        return err;
      }
      return null;
    })();
    assert.instance(e, ChmodSyntaxError);
    assert.is((e as ChmodSyntaxError).exitCode, 1);
    assert.is((e as ChmodSyntaxError).message, `Invalid argument passed to --chmod (${text})`);
  });
}

test('the umask applies only to clauses that name no class', () => {
  assert.is(tweakMode(S_IFREG | 0o600, parseChmod('+x', 0o022)), S_IFREG | 0o711);
  assert.is(tweakMode(S_IFREG | 0o600, parseChmod('+x', 0o077)), S_IFREG | 0o700);
  assert.is(tweakMode(S_IFREG | 0o600, parseChmod('a+x', 0o077)), S_IFREG | 0o711);
});

test('the file type bits pass through untouched', () => {
  assert.is(tweakMode(S_IFDIR | 0o700, parseChmod('0', 0)), S_IFDIR);
  assert.is(tweakMode(S_IFREG | 0o700, parseChmod('D755', 0)), S_IFREG | 0o700);
});

test('a text longer than the bound is refused before parsing', () => {
  assert.throws(() => parseChmod('+x,'.repeat(MAX_CHMOD_TEXT), 0), (e: unknown) => e instanceof ChmodSyntaxError);
  assert.is(parseChmod('+x,'.repeat(100) + '+x', 0).length, 101);
});

test.run();
