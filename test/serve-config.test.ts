// src/serve/config.ts: rsyncd.conf as params.c/loadparm.c read it. Syntax, defaults, the global
// section as the modules' defaults, --dparam, includes, errors with file:line; and the real
// rsync 3.5 daemon run on the same text: its module listing and its log's warnings must be
// exactly what our parse says.
import { formatModuleListing } from '../protocol/daemon.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseConfig,
  loadConfig,
  findModule,
  listedModules,
  missingPathError,
  expandConfigVars,
  strwiEQ,
  ConfigError,
  DEFAULT_DONT_COMPRESS,
  MAX_INCLUDE_DEPTH,
  type DaemonConfig,
  type IncludeDirectory,
} from '../src/serve/config.js';
import { startDaemonWithConfig } from './helpers/daemon.js';

const parse = (text: string, extra: Partial<Parameters<typeof parseConfig>[1]> = {}): DaemonConfig =>
  parseConfig(text, { file: 'rsyncd.conf', asRoot: false, ...extra });

const mod = (c: DaemonConfig, name: string) => {
  const m = findModule(c, name);
  if (!m) throw new Error(`no module ${name}`);
  return m;
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

test('comments, blank lines, white space, case and spaces in names, values kept verbatim inside', () => {
  const c = parse(
    [
      '# a comment',
      '   ; an indented comment',
      '',
      '\t',
      '[ my   module ]   trailing text after the bracket is ignored',
      '  PATH   =   /srv/a/b//  ',
      '  Com ment = x = y ; not a comment [z]  ',
      '  readonly = no', // white space inside a name is insignificant
      '  read_only = yes', // an underscore is not: unknown, ignored
      '  Max   Connections=\t7',
      '  comment2 = ignored',
      '  refuse options = delete  compress\r',
    ].join('\n'),
  );
  const m = mod(c, 'my module');
  assert.is(m.path, '/srv/a/b'); // a path loses its trailing slashes
  assert.is(m.comment, 'x = y ; not a comment [z]');
  assert.is(m.readOnly, false);
  assert.is(m.maxConnections, 7);
  assert.equal(m.refuseOptions, ['delete', 'compress']);
  assert.equal(c.warnings, [
    'Unknown Parameter encountered: "read_only" (rsyncd.conf:9)',
    'IGNORING unknown parameter "read_only" (rsyncd.conf:9)',
    'Unknown Parameter encountered: "comment2" (rsyncd.conf:11)',
    'IGNORING unknown parameter "comment2" (rsyncd.conf:11)',
  ]);
  assert.ok(strwiEQ('Read Only', 'readonly'));
  assert.not.ok(strwiEQ('read only', 'read_only'));
});

test('continuation lines: a trailing backslash joins the next line, whose leading white space stays', () => {
  const c = parse(['[m]', 'path = /x', 'comment = first \\', '    second\\  ', 'third', 'list \\', '  = no'].join('\n'));
  const m = mod(c, 'm');
  // params.c keeps what precedes the backslash and all of the next line, spaces included.
  assert.is(m.comment, 'first     secondthird');
  assert.is(m.list, false);
  // A continued section header.
  assert.ok(findModule(parse('[long \\\n name]\npath=/x\n'), 'long name'));
});

test('booleans as rsync spells them, and the three-valued ones', () => {
  const values: [string, boolean][] = [
    ['yes', true], ['YES', true], ['true', true], ['True', true], ['1', true], ['y e s', true],
    ['no', false], ['No', false], ['false', false], ['FALSE', false], ['0', false],
  ];
  for (const [text, want] of values) assert.is(mod(parse(`[m]\npath=/x\nlist = ${text}\n`), 'm').list, want, text);
  assert.is(mod(parse('[m]\npath=/x\nuse chroot = unset\n', { asRoot: true }), 'm').useChroot, true);
  const e = configError(() => parse('[m]\npath=/x\nread only = nope\n'));
  assert.is(e.line, 3);
  assert.is(e.exitCode, 1);
  assert.is(e.code, 'ERR_RSYNC_CONFIG');
  assert.match(e.message, /^rsyncd\.conf:3: Badly formed boolean in configuration file: "nope"\.$/);
});

test("defaults are rsync 3.5.0's (daemon-parm.txt and rsync_module's resolution of unset values)", () => {
  const c = parse('[m]\npath = /srv/m\n');
  assert.equal(c.global, {
    port: 873,
    address: undefined,
    motdFile: undefined,
    logFile: undefined,
    pidFile: undefined,
    socketOptions: undefined,
    listenBacklog: 5,
    daemonChroot: undefined,
    daemonUid: undefined,
    daemonGid: undefined,
    proxyProtocol: false,
    proxyProtocolHosts: undefined,
    syslogFacility: 'daemon',
    syslogTag: 'rsyncd',
    reverseLookup: true,
  });
  const m = mod(c, 'm');
  assert.is(m.comment, '');
  assert.is(m.list, true);
  assert.is(m.readOnly, true);
  assert.is(m.writeOnly, false);
  assert.is(m.strictModes, true);
  assert.is(m.reverseLookup, true);
  assert.is(m.forwardLookup, true);
  assert.is(m.timeout, 0);
  assert.is(m.maxConnections, 0);
  assert.is(m.maxVerbosity, 1);
  assert.is(m.lockFile, '/var/run/rsyncd.lock');
  assert.is(m.logFormat, '%o %h [%a] %m (%u) %f %l');
  assert.is(m.transferLogging, false);
  assert.is(m.ignoreErrors, false);
  assert.is(m.ignoreNonreadable, false);
  assert.is(m.fakeSuper, false);
  assert.equal(m.authUsers, []);
  assert.equal(m.refuseOptions, []);
  assert.equal(m.filterRules, []);
  assert.equal(m.dontCompress, DEFAULT_DONT_COMPRESS.split(' '));
  assert.ok(m.dontCompress.includes('*.zst') && m.dontCompress.includes('*.gz'));
  // Not root: chroot("/") fails, so "unset" use chroot is no; symlinks munged; names mapped; ids kept.
  assert.is(m.useChroot, false);
  assert.is(m.mungeSymlinks, true);
  assert.is(m.numericIds, false);
  assert.is(m.uid, undefined);
  assert.is(m.gid, undefined);
  // Root: chroot works, so use chroot is yes, nothing munged, numeric ids on, nobody/nogroup.
  const r = mod(parse('[m]\npath = /srv/m\n', { asRoot: true, nobodyGroup: 'nogroup' }), 'm');
  assert.is(r.useChroot, true);
  assert.is(r.mungeSymlinks, false);
  assert.is(r.numericIds, true);
  assert.is(r.uid, 'nobody');
  assert.equal(r.gid, ['nogroup']);
  // A "/./" path means an inner chroot: use chroot yes even unprivileged, and munging on (inner dir).
  const inner = mod(parse('[m]\npath = /srv/./m\n'), 'm');
  assert.is(inner.useChroot, true);
  assert.is(inner.mungeSymlinks, true);
  // Explicit values win over the resolution.
  const set = mod(parse('[m]\npath=/x\nuse chroot = no\nnumeric ids = yes\nmunge symlinks = no\n', { asRoot: true }), 'm');
  assert.equal([set.useChroot, set.numericIds, set.mungeSymlinks], [false, true, false]);
  // With chroot, "numeric ids = no" is honoured; without, only "yes" turns it on.
  assert.is(mod(parse('[m]\npath=/x\nuse chroot = yes\nnumeric ids = no\n'), 'm').numericIds, false);
});

test('the global section sets the defaults of the modules after it; each module overrides', () => {
  const c = parse(
    [
      'read only = no',
      'timeout = 60',
      'comment = from global',
      'port = 8730',
      'motd file = /etc/motd',
      '[a]',
      'path = /a',
      'timeout = 5',
      '[global]', // back to the globals: later modules only
      'read only = yes',
      '[b]',
      'path = /b',
    ].join('\n'),
  );
  const a = mod(c, 'a');
  const b = mod(c, 'b');
  assert.equal([a.readOnly, a.timeout, a.comment], [false, 5, 'from global']);
  assert.equal([b.readOnly, b.timeout, b.comment], [true, 60, 'from global']);
  assert.is(c.global.port, 8730);
  assert.is(c.global.motdFile, '/etc/motd');
  // A global-only parameter inside a module: warned about and ignored, as rsync does.
  const w = parse('[a]\npath=/a\nport = 99\n');
  assert.is(w.global.port, 873);
  assert.equal(w.warnings, ['Global parameter port found in module section! (rsyncd.conf:3)']);
});

test('--dparam overrides the global section, as if set at its end; module values still win', () => {
  const text = 'read only = yes\ntimeout = 10\nport = 1000\n[a]\npath=/a\n[b]\npath=/b\ntimeout = 3\n';
  const c = parse(text, { dparams: { 'read only': 'no', timeout: '  20', port: '2000', pidfile: '/run/x.pid' } });
  assert.equal([mod(c, 'a').readOnly, mod(c, 'a').timeout], [false, 20]);
  assert.equal([mod(c, 'b').readOnly, mod(c, 'b').timeout], [false, 3]);
  assert.is(c.global.port, 2000);
  assert.is(c.global.pidFile, '/run/x.pid');
  // Without modules they still apply (daemon_main's set_dparams after the globals-only load).
  assert.is(parse('port = 1\n', { dparams: { port: '2' } }).global.port, 2);
  const e = configError(() => parse(text, { dparams: { 'no such thing': '1' } }));
  assert.match(e.message, /--dparam: Unknown parameter "no such thing"/);
  assert.is(e.exitCode, 1);
});

test('a repeated module name reopens the first (names compared as strwiEQ does); lookups are exact', () => {
  const c = parse('[Data]\npath=/d\ncomment=one\n[da ta]\ncomment=two\nread only=no\n[other]\npath=/o\n');
  assert.equal(
    c.modules.map((m) => m.name),
    ['Data', 'other'],
  );
  const d = mod(c, 'Data');
  assert.equal([d.path, d.comment, d.readOnly], ['/d', 'two', false]);
  assert.is(findModule(c, 'data'), undefined); // rsync's lp_number is case-sensitive
  assert.is(findModule(c, 'da ta'), undefined);
});

test('malformed lines are ConfigErrors naming file and line', () => {
  const cases: [string, number, RegExp][] = [
    ['path = /x\n[unterminated\n', 2, /Badly formed line in config file: unterminated/],
    ['[]\n', 1, /Empty section name/],
    ['[ok]\npath=/x\n[a/b]\n', 3, /invalid section name in configuration file: a\/b/],
    ['[m]\npath=/x\nthis line has no equals sign\n', 3, /badly formed line \(no "="\) in config file: this line has no equals sign/],
    ['[m]\n= value\n', 2, /Invalid parameter name/],
    ['[m]\nmax connections = ten\n', 2, /Badly formed integer in configuration file: "ten"/],
    ['[m]\ntimeout = 30s\n', 2, /Badly formed integer/],
    ['[m]\n&frobnicate x\n', 2, /Unknown directive: &frobnicate/],
    ['[eof', 1, /Unexpected EOF in the config file: eof/],
    ['[m]\npath=/x\nno_value_at_eof', 3, /Unexpected end-of-file at: no_value_at_eof/],
  ];
  for (const [text, line, re] of cases) {
    const e = configError(() => parse(text, { file: '/etc/rsyncd.conf' }));
    assert.is(e.file, '/etc/rsyncd.conf', text);
    assert.is(e.line, line, text);
    assert.ok(e.message.startsWith(`/etc/rsyncd.conf:${line}: `), e.message);
    assert.match(e.message, re);
  }
  assert.match(configError(() => parse('a = 1\0\n')).message, /NUL/);
});

test('auth users, hosts, gid, filters and the rest become typed values', () => {
  const c = parse(
    [
      '[m]',
      'path = /m',
      'auth users = alice, @staff:ro bob:deny, carol:rw *:RO',
      'hosts allow = 10.0.0.0/8, Host.Example.COM\t192.168.1.1',
      'hosts deny = *',
      'gid = , wheel ,my group',
      'uid = backup',
      'filter = - *.tmp + keep/ -,s secret*',
      'include from = /etc/inc.txt',
      'include = a/ b/',
      'exclude from = /etc/exc.txt',
      'exclude = *.o - *.a + *.c ! *.d',
      'dont compress = *.GZ *.zip',
      'incoming chmod = Dg+s,ug+w',
      'outgoing chmod = o-rwx',
      'log format = %t %o %f',
      'transfer logging = yes',
      'max verbosity = 3',
      'syslog facility = LOCAL5',
      'temp dir = /tmp/x/',
      'charset = utf-8',
      'fake super = yes',
      'post-xfer exec = /bin/true',
      'pre-xfer exec = /bin/false',
      'early exec = /bin/echo',
    ].join('\n'),
  );
  const m = mod(c, 'm');
  assert.equal(m.authUsers, [
    { pattern: 'alice', group: false },
    { pattern: 'staff', group: true, access: 'ro' },
    { pattern: 'bob', group: false, access: 'deny' },
    { pattern: 'carol', group: false, access: 'rw' },
    { pattern: '*', group: false, access: 'ro' },
  ]);
  assert.equal(m.hostsAllow, ['10.0.0.0/8', 'host.example.com', '192.168.1.1']);
  assert.equal(m.hostsDeny, ['*']);
  assert.equal(m.gid, ['wheel', 'my group']);
  assert.is(m.uid, 'backup');
  assert.equal(m.filterRules, [
    '- *.tmp',
    '+ keep/',
    '-,s secret*',
    'merge,+ /etc/inc.txt',
    '+ a/',
    '+ b/',
    'merge,- /etc/exc.txt',
    '- *.o',
    '- *.a',
    '+ *.c',
    '!',
    '- *.d',
  ]);
  assert.equal(
    m.daemonFilter.map((f) => f.kind),
    ['filter', 'include from', 'include', 'exclude from', 'exclude'],
  );
  assert.equal(m.dontCompress, ['*.gz', '*.zip']);
  assert.is(m.incomingChmod, 'Dg+s,ug+w');
  assert.is(m.outgoingChmod, 'o-rwx');
  assert.is(m.logFormat, '%t %o %f');
  assert.is(m.transferLogging, true);
  assert.is(m.maxVerbosity, 3);
  assert.is(m.syslogFacility, 'local5');
  assert.is(m.tempDir, '/tmp/x');
  assert.is(m.charset, 'utf-8');
  assert.is(m.fakeSuper, true);
  assert.is(m.postXferExec, '/bin/true');
  assert.equal(c.warnings, [
    'module m: "early exec" is kept but not run by lsyncd serve',
    'module m: "pre-xfer exec" is kept but not run by lsyncd serve',
    'module m: "post-xfer exec" is kept but not run by lsyncd serve',
  ]);
});

test('%VAR% stays in string parameters (expanded per connection) and is expanded in the others at load', () => {
  const c = parse('[m]\npath = /home/%RSYNC_USER_NAME%\ntimeout = %T%\nlist = %L%\n', { env: { T: '42', L: 'no' } });
  const m = mod(c, 'm');
  assert.is(m.path, '/home/%RSYNC_USER_NAME%');
  assert.is(expandConfigVars(m.path, { RSYNC_USER_NAME: 'alice' }), '/home/alice');
  assert.is(expandConfigVars('/a/%unknown%/%NOPE%/100%', {}), '/a/%unknown%/%NOPE%/100%');
  // An unknown name leaves its '%' and the scan goes on from the next character, as expand_vars does.
  assert.is(expandConfigVars('%A%B%', { B: 'b' }), '%Ab');
  assert.is(m.timeout, 42);
  assert.is(m.list, false);
});

test('&include scopes its globals to the included file; &merge continues the current section; directories in name order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-conf-'));
  try {
    await writeFile(join(dir, 'one.conf'), 'read only = no\ncomment = included\n[inc1]\npath = /inc1\n');
    await mkdir(join(dir, 'conf.d'));
    await writeFile(join(dir, 'conf.d', 'b.conf'), '[fromb]\npath = /b\n');
    await writeFile(join(dir, 'conf.d', 'a.conf'), 'timeout = 9\n[froma]\npath = /a\n');
    await writeFile(join(dir, 'conf.d', 'ignored.txt'), '[never]\npath = /n\n');
    await mkdir(join(dir, 'merge.d'));
    await writeFile(join(dir, 'merge.d', 'x.inc'), 'max connections = 4\n');
    await writeFile(join(dir, 'merge.d', 'y.conf'), 'max connections = 99\n');
    await writeFile(
      join(dir, 'rsyncd.conf'),
      [
        'comment = main',
        `&include ${join(dir, 'one.conf')}`,
        `&include = ${join(dir, 'conf.d')}`,
        '[main]',
        'path = /main',
        `&merge ${join(dir, 'merge.d')}`,
        '[after]',
        'path = /after',
      ].join('\n'),
    );
    const c = loadConfig(join(dir, 'rsyncd.conf'), { asRoot: false });
    assert.equal(
      c.modules.map((m) => m.name),
      ['inc1', 'froma', 'fromb', 'main', 'after'],
    );
    assert.equal([mod(c, 'inc1').readOnly, mod(c, 'inc1').comment], [false, 'included']);
    assert.is(mod(c, 'froma').timeout, 9);
    assert.is(mod(c, 'fromb').timeout, 0); // "]reset" between the files of a directory
    assert.equal([mod(c, 'main').readOnly, mod(c, 'main').comment], [true, 'main']);
    assert.is(mod(c, 'main').maxConnections, 4); // merged into [main]; *.conf is not a merge file
    assert.is(mod(c, 'after').maxConnections, 0);

    // A file that includes itself stops at the depth bound, with the line that did it.
    await writeFile(join(dir, 'loop.conf'), `&merge ${join(dir, 'loop.conf')}\n`);
    const e = configError(() => loadConfig(join(dir, 'loop.conf')));
    assert.match(e.message, new RegExp(`includes nested deeper than ${MAX_INCLUDE_DEPTH}`));
    assert.is(e.line, 1);
    const missing = configError(() => loadConfig(join(dir, 'nope.conf')));
    assert.match(missing.message, /unable to open config file/);
    await writeFile(join(dir, 'bad-include.conf'), `\n&include ${join(dir, 'absent.conf')}\n`);
    const bad = configError(() => loadConfig(join(dir, 'bad-include.conf')));
    assert.equal([bad.line, bad.file], [2, join(dir, 'bad-include.conf')]);
    assert.match(bad.message, /unable to stat config file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('parseConfig takes includes through its callback', () => {
  const files: Record<string, string | IncludeDirectory> = {
    '/virtual/mods': { directory: ['2.conf', '1.conf'] },
    '/virtual/mods/1.conf': '[one]\npath=/1\n',
    '/virtual/mods/2.conf': '[two]\npath=/2\n',
  };
  const c = parse('&include /virtual/mods\n', {
    include: (p) => {
      const f = files[p];
      if (f === undefined) throw new Error('ENOENT');
      return f;
    },
  });
  assert.equal(
    c.modules.map((m) => m.name),
    ['one', 'two'],
  );
  assert.match(configError(() => parse('&include /x\n')).message, /includes are not available/);
});

test('a module without path: parsed, and refused when opened with the line rsync sends', async () => {
  const c = parse('[nopath]\ncomment = x\n');
  assert.equal(missingPathError(mod(c, 'nopath')), {
    log: 'No path specified for module nopath',
    line: '@ERROR: no path setting.',
  });
  assert.is(missingPathError(mod(parse('[p]\npath=/p\n'), 'p')), undefined);
  const d = await startDaemonWithConfig((dir) => `use chroot = no\nlog file = ${join(dir, 'log')}\n[nopath]\ncomment = x\n`);
  try {
    const out = spawnSync('rsync', [`rsync://${d.host}:${d.port}/nopath/`], { encoding: 'utf8' });
    assert.is(out.status, 5);
    assert.ok(out.stderr.split('\n').includes(missingPathError(mod(c, 'nopath'))!.line), out.stderr);
    assert.match(await readFile(join(d.dir, 'log'), 'utf8'), /No path specified for module nopath\b/);
  } finally {
    await d.stop();
  }
});

// The same text through the real daemon: what it lists and what it warns about.
const REAL_CONFIG = (dir: string) =>
  [
    '# rsyncd.conf exercising the syntax',
    `log file = ${join(dir, 'rsyncd.log')}`,
    'use chroot = no',
    '   ; indented comment',
    'comment = the global default',
    'list = no',
    'bogus parameter = 1',
    'read_only = no',
    '',
    '[ spaced   name ]',
    `\tpath = ${join(dir, 'm')}`,
    '\tlist = yes',
    '[shown]',
    `path = ${join(dir, 'm')}`,
    'List = Y E S',
    'comment = first part \\',
    '     second part   ',
    '[hidden]',
    `path = ${join(dir, 'm')}`,
    '[NoPathListed]',
    'list = 1',
    'port = 99',
    '[padding-is-fifteen-or-more]',
    `path = ${join(dir, 'm')}`,
    'list = true',
    'comment =    padded comment with = and ; inside   ',
    '[global]',
    'list = yes',
    'comment = later global',
    '[late]',
    `path = ${join(dir, 'm')}`,
    '[shown]',
    'read only = no',
    '',
  ].join('\n');

test('the real rsync daemon lists exactly the modules and comments our parse says are listable', async () => {
  const d = await startDaemonWithConfig(REAL_CONFIG);
  try {
    await mkdir(join(d.dir, 'm'));
    const ours = loadConfig(d.configPath, { asRoot: process.getuid?.() === 0 });
    const expected = formatModuleListing(listedModules(ours), 32).slice(0, -1);
    assert.equal(expected, [
      'spaced name    \tthe global default',
      'shown          \tfirst part      second part',
      'NoPathListed   \tthe global default',
      'padding-is-fifteen-or-more\tpadded comment with = and ; inside',
      'late           \tlater global',
    ]);
    const out = spawnSync('rsync', [`rsync://${d.host}:${d.port}/`], { encoding: 'utf8' });
    assert.is(out.status, 0, out.stderr);
    assert.equal(out.stdout.split('\n').slice(0, -1), expected);

    // The warnings rsync logged while loading the same text, in order, are ours (ours add file:line).
    const log = await readFile(join(d.dir, 'rsyncd.log'), 'utf8');
    const perConnection = log
      .split('\n')
      .filter((l) => /\[\d+\] /.test(l))
      .map((l) => l.replace(/^.*?\[\d+\] /, ''));
    // The listing connection re-reads the whole file: its warnings come before "connect from".
    const connect = perConnection.findIndex((l) => l.startsWith('connect from'));
    const start = perConnection.lastIndexOf(perConnection.find((l) => l.startsWith('rsyncd version'))!);
    const rsyncWarnings = perConnection.slice(start + 1, connect);
    assert.equal(
      ours.warnings.map((w) => w.replace(/ \([^()]*:\d+\)$/, '')),
      rsyncWarnings,
    );
    assert.equal(rsyncWarnings, [
      'Unknown Parameter encountered: "bogus parameter"',
      'IGNORING unknown parameter "bogus parameter"',
      'Unknown Parameter encountered: "read_only"',
      'IGNORING unknown parameter "read_only"',
      'Global parameter port found in module section!',
    ]);
    // The reopened [shown] took "read only = no"; the first appearance fixed its place.
    assert.is(mod(ours, 'shown').readOnly, false);
  } finally {
    await d.stop();
  }
});

test('loadConfig refuses a config symlink owned by another user, as open_no_attacker_symlinks does', async () => {
  if (process.getuid?.() !== 0) {
    // Only root can make a symlink owned by someone else; as a user, a symlink of ours is followed.
    const dir = await mkdtemp(join(tmpdir(), 'lsyncd-conf-'));
    try {
      await writeFile(join(dir, 'real.conf'), '[m]\npath=/m\n');
      await (await import('node:fs/promises')).symlink(join(dir, 'real.conf'), join(dir, 'link.conf'));
      assert.ok(findModule(loadConfig(join(dir, 'link.conf')), 'm'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-conf-'));
  try {
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'real.conf'), '[m]\npath=/m\n');
    const fs = await import('node:fs/promises');
    await fs.symlink(join(dir, 'real.conf'), join(dir, 'mine.conf'));
    assert.ok(findModule(loadConfig(join(dir, 'mine.conf')), 'm'));
    await fs.symlink(join(dir, 'real.conf'), join(dir, 'theirs.conf'));
    await fs.lchown(join(dir, 'theirs.conf'), 65534, 65534);
    assert.match(configError(() => loadConfig(join(dir, 'theirs.conf'))).message, /symlink owned by another user/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
