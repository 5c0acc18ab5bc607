// Config files without a daemon: our YAML read into syncs (each key the command line's words) and
// every mistake reported at its line and column; lsyncd 2's Lua configs run by fengari, their
// sync{} blocks (loops, os.getenv, layers, rsync = {...}) mapped onto our options and their
// unsupported constructs refused at their line; the bounds a file cannot get past; the shared push
// cap; and that every option of the command line has its place in a file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError, SYNC_OPTIONS, type LsyncdConfig } from '../src/config/index.js';
import { readYamlConfig } from '../src/config/yaml.js';
import { runLuaConfig } from '../src/config/lua.js';
import { PushLimiter } from '../src/live/push-limit.js';
import { lsyncd } from './helpers/cli.js';
import type { PushOptions } from '../src/transfer/push.js';
import type { PushResult } from '../src/transfer/push.js';

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-config-'));
});
test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The error a config text gives: its FILE:LINE:COL message. */
function yamlError(text: string): string {
  try {
    readYamlConfig(text, 'f.yaml');
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

function luaError(text: string): string {
  try {
    runLuaConfig(text, 'f.lua');
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

/** Each sync as `name: source -> targets | words`. */
function summary(config: LsyncdConfig): string[] {
  return config.syncs.map((s) => `${s.name}: ${s.source} -> ${s.targets.join(' ')} | ${s.options.flatMap((o) => o.args).join(' ')}`);
}

test('YAML: settings and syncs, each key becoming the command line\'s words in the order written', () => {
  const config = readYamlConfig(
    [
      '# two syncs, one of them to two targets',
      'logfile: /var/log/lsyncd.log',
      'status-file: /run/lsyncd.status',
      'status-interval: 5',
      'max-pushes: 2',
      'log-level: debug',
      'insist: true',
      'syncs:',
      '  - name: www',
      '    source: /srv/www/',
      '    target: backup::www/site/',
      '    delay: 0.5',
      "    exclude: ['*.tmp', cache/]",
      '    include: keep.tmp',
      '    filter: "- *.o"',
      '    delete: false',
      '    compress: 2',
      '    checksum: true',
      '    perms: false',
      '    password-file: /etc/lsyncd.secret',
      '  - source: /srv/db',
      '    targets: [a::m/, "rsync://b:8730/m/p/"]',
      '    startup: none',
      '    verbose: true',
      '    archive: true',
      '    delete: startup',
      '    max-size: 10M',
      '    min-size: 1',
      '    partial: true',
      '    backup-dir: .old',
      '    suffix: .bak',
      '  - source: /srv/logs',
      '    target: c::logs/',
      '    delete: running',
      '    backup: true',
      '    sparse: true',
    ].join('\n'),
    'f.yaml',
  );
  assert.equal(config.globals, { logfile: '/var/log/lsyncd.log', statusFile: '/run/lsyncd.status', statusInterval: 5, maxPushes: 2, logLevel: 'debug', insist: true });
  assert.equal(summary(config), [
    'www: /srv/www/ -> backup::www/site/ | --delay 0.5 --exclude *.tmp --exclude cache/ --include keep.tmp --filter - *.o --no-delete --compress --compress --checksum --no-perms --password-file /etc/lsyncd.secret',
    '/srv/db: /srv/db -> a::m/ rsync://b:8730/m/p/ | --no-startup --verbose --archive --delete-only startup --max-size 10M --min-size 1 --partial --backup-dir .old --suffix .bak',
    '/srv/logs: /srv/logs -> c::logs/ | --delete-only running --backup --sparse',
  ]);
  assert.equal(config.syncs[0]!.at, { file: 'f.yaml', line: 9, col: 5 });
  assert.equal(config.syncs[0]!.options[1]!.at, { file: 'f.yaml', line: 13, col: 5 });
});

test('YAML: mistakes are FILE:LINE:COL with what was expected', () => {
  const head = 'syncs:\n  - source: /a\n    target: h::m\n';
  assert.is(yamlError(head + '    dely: 3\n'), 'f.yaml:4:5: unknown key "dely" in a sync (did you mean "delay"?)');
  assert.is(yamlError(head + '    delay: soon\n'), 'f.yaml:4:12: delay: expected seconds (0 to 86400), got "soon"');
  assert.is(yamlError(head + '    delay: 100000\n'), 'f.yaml:4:12: delay: expected seconds (0 to 86400), got 100000');
  assert.is(yamlError(head + '    checksum: yes please\n'), 'f.yaml:4:15: checksum: expected true or false, got "yes please"');
  assert.is(yamlError(head + '    exclude: [a, {b: 1}]\n'), 'f.yaml:4:18: exclude: expected a pattern, got a map');
  assert.is(yamlError(head + '    startup: later\n'), 'f.yaml:4:14: startup: expected one of true, false, full, none, changed, got "later"');
  assert.is(yamlError('syncs:\n  - target: h::m\n'), 'f.yaml:2:5: a sync needs source: (the local directory to mirror)');
  assert.is(yamlError('syncs:\n  - source: /a\n'), 'f.yaml:2:5: a sync needs target: (a daemon address, or a list under targets:)');
  assert.is(yamlError('logfile: /x\n'), 'f.yaml:1:1: no syncs: expected a list of syncs, each with source: and target:');
  assert.is(yamlError('logfle: /x\n' + head), 'f.yaml:1:1: unknown key "logfle" in the settings (did you mean "logfile"?)');
  assert.is(yamlError('max-pushes: 0\n' + head), 'f.yaml:1:13: max-pushes: expected a count from 1 to 1000, got 0');
  assert.is(yamlError('syncs: []\n'), 'f.yaml:1:8: syncs: expected a list of syncs, got a list');
  assert.is(yamlError('syncs:\n  - /a\n'), 'f.yaml:2:5: expected a sync (a map with source: and target:), got "/a"');
  assert.is(yamlError(''), 'f.yaml:1:1: the file is empty: expected settings and a syncs: list');
  assert.is(yamlError(head + '    name: "two\\nlines"\n'), 'f.yaml:4:11: name: expected a name of at most 200 characters without control characters, got "two\\nlines"');
  assert.match(yamlError('syncs:\n  - source: /a\n    target: [h::m\n'), /^f\.yaml:\d+:\d+: YAML: /);
  assert.match(yamlError('syncs:\n  - source: /a\n    source: /b\n    target: h::m\n'), /^f\.yaml:3:5: YAML: Map keys must be unique/);
  assert.is(yamlError(head + '  - name: /a\n    source: /b\n    target: h::m\n'), 'f.yaml:4:5: a second sync named "/a" (the first is at f.yaml:2:5): give each a distinct name');
});

test('YAML: anchors and aliases share settings; two syncs of one source get names telling them apart', () => {
  const config = readYamlConfig(
    ['syncs:', '  - source: /a', '    target: h::m/1/', "    exclude: &ex ['*.tmp', '*.swp']", '  - source: /a', '    target: h::m/2/', '    exclude: *ex'].join('\n'),
    'f.yaml',
  );
  assert.equal(summary(config), ['/a -> h::m/1/: /a -> h::m/1/ | --exclude *.tmp --exclude *.swp', '/a -> h::m/2/: /a -> h::m/2/ | --exclude *.tmp --exclude *.swp']);
});

test('YAML: an alias bomb is stopped at a bound, not expanded', () => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
  lines.push('syncs:', '  - source: /a', '    target: h::m', '    exclude: *a8');
  const started = Date.now();
  assert.match(yamlError(lines.join('\n')), /more than 100000 values \(aliases included\)|unknown key "a0"/);
  assert.ok(Date.now() - started < 5000);
});

test('Lua: lsyncd 2 configs run as they are — settings{}, a loop over a table with os.getenv, layers, rsync = {...}', () => {
  process.env.LSYNCD_TEST_BASE = '/data';
  const config = runLuaConfig(
    [
      'settings {',
      '  logfile = "/var/log/lsyncd.log",',
      '  statusFile = "/var/log/lsyncd.status",',
      '  statusInterval = 10,',
      '  nodaemon = true,',
      '  insist = true,',
      '  maxProcesses = 3,',
      '}',
      'local base = os.getenv("LSYNCD_TEST_BASE")',
      'local mine = { default.rsync, delay = 2, rsync = { compress = true } }',
      'for _, site in ipairs({ "one", "two" }) do',
      '  sync {',
      '    mine,',
      '    source = base .. "/" .. site,',
      '    target = "backup::sites/" .. site .. "/",',
      '    exclude = { "*.tmp", "cache/" },',
      '    rsync = { archive = true, _extra = { "--checksum-choice=md5", "-W" } },',
      '  }',
      'end',
      'sync { default.rsync, source = "/etc", target = "rsync://backup/etc", delay = 0, init = false, delete = false, excludeFrom = "/etc/ex", filter = { "- *.o" },',
      '  rsync = { perms = true, times = false, owner = true, hard_links = true, password_file = "/pw", binary = "/usr/bin/rsync", acls = false } }',
      'sync { default.rsync, source = "/srv", target = "h::srv", delete = "startup", rsync = { backup = true, backup_dir = "/old", suffix = ".1", sparse = true, _extra = { "--max-size=1M", "--partial" } } }',
      'sync { default.rsync, source = "/var", target = "h::var", delete = "running" }',
    ].join('\n'),
    'f.lua',
  );
  assert.equal(config.globals, { logfile: '/var/log/lsyncd.log', statusFile: '/var/log/lsyncd.status', statusInterval: 10, nodaemon: true, insist: true, maxPushes: 3 });
  assert.equal(summary(config), [
    // The sync's own rsync table merged over its layer's; archive brings -p (lsyncd 2's default is -lts).
    '/data/one/: /data/one/ -> backup::sites/one/ | --delay 2 --exclude *.tmp --exclude cache/ --compress --archive --checksum-choice md5 --whole-file',
    '/data/two/: /data/two/ -> backup::sites/two/ | --delay 2 --exclude *.tmp --exclude cache/ --compress --archive --checksum-choice md5 --whole-file',
    '/etc/: /etc/ -> rsync://backup/etc | --delay 0 --no-delete --exclude-from /etc/ex --filter - *.o --no-startup --no-times --owner --hard-links --password-file /pw',
    "/srv/: /srv/ -> h::srv | --delay 15 --delete-only startup --no-perms --backup --backup-dir /old --suffix .1 --sparse --max-size 1M --partial",
    '/var/: /var/ -> h::var | --delay 15 --delete-only running --no-perms',
  ]);
  assert.equal(config.syncs[0]!.at, { file: 'f.lua', line: 12, col: 0 });
  assert.equal(config.syncs[2]!.at.line, 20);
});

test("Lua: lsyncd 2's defaults — delay 15, no -p unless perms or archive; the old settings = {...} form", () => {
  const config = runLuaConfig('settings = { logfile = "/l" }\nsync { default.rsync, source = "/s/", target = "h::m" }\n', 'f.lua');
  assert.equal(config.globals, { logfile: '/l' });
  assert.equal(summary(config), ['/s/: /s/ -> h::m | --delay 15 --no-perms']);
});

test('Lua: unsupported constructs are refused naming the construct and the line', () => {
  assert.is(luaError('\nsync { default.rsyncssh, source = "/a", host = "h", targetdir = "/x" }'), 'f.lua:2: default.rsyncssh is not supported: lsyncd pushes to an rsync daemon (use default.rsync with target = "host::module/path")');
  assert.is(luaError('sync { default.direct, source = "/a", target = "/b" }'), 'f.lua:1: default.direct is not supported: lsyncd pushes to an rsync daemon (use default.rsync with target = "host::module/path")');
  assert.is(luaError('x = 1\n\nsync { default.rsync, source = "/a", target = "h::m", onCreate = function() end }'), "f.lua:3: sync: onCreate (a custom action or hook) is not supported: lsyncd runs default.rsync's behaviour itself");
  assert.is(luaError('sync { source = "/a", target = "h::m", action = function(inlet) end }'), "f.lua:1: sync: action (a custom action or hook) is not supported: lsyncd runs default.rsync's behaviour itself");
  assert.is(luaError('sync { default.rsync, source = "/a", target = "h::m", init = function() end }'), "f.lua:1: sync: init (a custom action or hook) is not supported: lsyncd runs default.rsync's behaviour itself");
  assert.is(luaError('sync { default.rsync, source = "/a", target = "host:/srv/a" }'), 'f.lua:1: target = "host:/srv/a": lsyncd pushes to an rsync daemon; write "host::module/path" (a target over ssh or a local directory is not supported)');
  assert.is(luaError('sync { default.rsync, source = "/a", target = "h::m", delete = "sometimes" }'), "f.lua:1: delete: expected true, false, 'startup' or 'running', got \"sometimes\"");
  assert.is(luaError('sync { default.rsync, source = "/a", target = "h::m", rsync = { temp_dir = "/t" } }'), 'f.lua:1: rsync.temp_dir is not supported by lsyncd (its rsync option is not implemented); remove it or set it to false');
  assert.is(luaError('sync { default.rsync, source = "/a", target = "h::m", rsync = { _extra = { "--rsh=ssh" } } }'), 'f.lua:1: rsync._extra: --rsh=ssh is not an option lsyncd takes for a sync');
  assert.is(luaError('sync { default.rsync, source = "/a", target = "h::m", excludes = { "x" } }'), 'f.lua:1: unknown key "excludes" in sync{} (did you mean "exclude"?)');
  assert.is(luaError('sync { default.rsync, target = "h::m" }'), 'f.lua:1: sync: source = is missing (the local directory to mirror)');
  assert.is(luaError('settings { logfile = "/l", statusIntervall = 3 }\nsync { default.rsync, source = "/a", target = "h::m" }'), 'f.lua:1: unknown key "statusIntervall" in settings{} (did you mean "statusInterval"?)');
  assert.is(luaError('settings { logfile = "/l" }'), 'f.lua: the config makes no sync{}: expected at least one sync { default.rsync, source = ..., target = ... }');
  assert.is(luaError('sync { default.rsync, source = "/a" target = "h::m" }'), "f.lua:1: Lua: '}' expected near 'target'");
  assert.is(luaError('local t = nil\n\nsync { default.rsync, source = t.x, target = "h::m" }'), "f.lua:3: Lua: attempt to index a nil value (local 't')");
});

test('Lua: a config that never ends is stopped; nothing it could run changes the machine', () => {
  const started = Date.now();
  assert.match(luaError('while true do end'), /^f\.lua: Lua: the config ran for more than 20000000 Lua instructions/);
  assert.ok(Date.now() - started < 20_000);
  assert.match(luaError('os.remove("/etc/passwd")\nsync { default.rsync, source = "/a", target = "h::m" }'), /^f\.lua:1: Lua: attempt to call a nil value \(field 'remove'\)/);
  assert.match(luaError('os.execute("touch /tmp/x")'), /^f\.lua:1: Lua: attempt to call a nil value \(field 'execute'\)/);
  assert.match(luaError('io.open("/etc/passwd")'), /^f\.lua:1: Lua: attempt to call a nil value \(field 'open'\)/);
});

test('loadConfig picks the format by the suffix; an unreadable or oversized file is one line', async () => {
  await writeFile(join(work, 'c.yaml'), 'syncs:\n  - {source: /a, target: "h::m"}\n');
  await writeFile(join(work, 'c.lua'), 'sync { default.rsync, source = "/a", target = "h::m" }\n');
  assert.is(loadConfig(join(work, 'c.yaml')).syncs[0]!.name, '/a');
  assert.is(loadConfig(join(work, 'c.lua')).syncs[0]!.name, '/a/');
  await writeFile(join(work, 'big.yaml'), Buffer.alloc(1024 * 1024 + 1, 0x20));
  assert.throws(() => loadConfig(join(work, 'big.yaml')), /big\.yaml: 1048577 bytes; a config file is at most 1048576/);
  assert.throws(() => loadConfig(join(work, 'none.yaml')), /none\.yaml: cannot read the config file: ENOENT/);
});

test('the CLI: a YAML or Lua mistake is one line with its position and exit 1; an option the command line lacks is named at its key', async () => {
  await writeFile(join(work, 'bad.yaml'), 'syncs:\n  - source: /a\n    target: h::m\n    delay: [1]\n');
  let r = await lsyncd([join(work, 'bad.yaml')]);
  assert.is(r.status, 1);
  assert.is(r.stderr, `lsyncd: ${join(work, 'bad.yaml')}:4:12: delay: expected seconds (0 to 86400), got a list\n`);
  await writeFile(join(work, 'bad.lua'), '-- a comment\nsync { default.rsyncssh, source = "/a", host = "h", targetdir = "/b" }\n');
  r = await lsyncd(['--config', join(work, 'bad.lua')]);
  assert.is(r.status, 1);
  assert.is(r.stderr, `lsyncd: ${join(work, 'bad.lua')}:2: default.rsyncssh is not supported: lsyncd pushes to an rsync daemon (use default.rsync with target = "host::module/path")\n`);
  await writeFile(join(work, 'proto.yaml'), 'syncs:\n  - source: /a\n    target: h::m\n    protocol: 20\n');
  r = await lsyncd([join(work, 'proto.yaml')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, new RegExp(`^lsyncd: ${join(work, 'proto.yaml')}:4:5: protocol: option '--protocol <N>' argument '20' is invalid\\. expected an integer from \\d+ to \\d+\\n$`));
  await writeFile(join(work, 'mod.yaml'), 'syncs:\n  - source: /a\n    target: "h::"\n');
  r = await lsyncd([join(work, 'mod.yaml')]);
  assert.is(r.stderr, `lsyncd: ${join(work, 'mod.yaml')}:2:5: h:: names no module\n`);
  r = await lsyncd(['--config', join(work, 'c.yaml'), '-z']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /with a config file, --compress belongs in the file, per sync/);
  r = await lsyncd(['--once', join(work, 'c.yaml')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /--once takes SOURCE TARGET or ADDRESS DEST, not a config file/);
  r = await lsyncd(['--config', join(work, 'c.yaml'), '/src', 'h::m']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /takes no SOURCE or TARGET/);
  r = await lsyncd(['--nodaemon', join(work, 'c.yaml')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^lsyncd: sync \/a: SOURCE \/a is not a directory\n/);
});

test('every option of the command line has its place: a sync key, a run setting, or one that a live mirror does not take', async () => {
  const help = (await lsyncd(['--help'])).stdout.toString();
  const cli = new Set(help.match(/--[a-z][a-z0-9-]*/g));
  const inFile = new Set(Object.values(SYNC_OPTIONS).flatMap((spec) =>
    'option' in spec ? [spec.option, ...('off' in spec && spec.off ? [spec.off] : [])] : Object.values(spec.choices).flat().filter((w) => w.startsWith('--'))));
  const runSettings = ['--config', '--nodaemon', '--no-daemon', '--logfile', '--syslog', '--log-ident', '--log-facility', '--pidfile', '--status-file', '--insist', '--debug', '--scarce'];
  // --once, listing and pull options, and what a live mirror refuses (-m, --inplace, --append).
  const notLive = [
    '--once', '--home', '--recursive', '--links', '--help', '--version', '--ignore-times', '--del', '--delete-before', '--delete-during', '--delete-delay', '--delete-after', '--max-delete', '--force', '--ignore-errors',
    '--delete-missing-args', '--ignore-missing-args', '--size-only', '--inplace', '--append', '--append-verify', '--ignore-existing', '--existing', '--ignore-non-existing', '--update', '--compare-dest', '--copy-dest',
    '--link-dest', '--fuzzy', '--skip-compress', '--stats', '--progress', '--info', '--quiet', '--human-readable', '--no-motd',
    '--dryrun', '--zc', '--no-startup', '--log-file', '--log-file-format',
    // pull-only (the daemon walks) or done by the daemon on a --once push
    '--copy-links', '--copy-unsafe-links', '--copy-dirlinks', '--relative', '--no-relative', '--files-from', '--no-implied-dirs', '--one-file-system', '--from0', '--prune-empty-dirs', '--trust-sender',
    // the receiving options a --once push forwards (test/push-forwarded), some of which a pull does itself (test/recv-times)
    '--keep-dirlinks', '--omit-dir-times', '--omit-link-times', '--executability', '--delay-updates', '--temp-dir',
    // a pull's (it stores what needs root in xattr records; test/serve-fake-super)
    '--fake-super',
  ];
  const unplaced = [...cli].filter((o) => !inFile.has(o) && !runSettings.includes(o) && !notLive.includes(o));
  assert.equal(unplaced, [], `command-line options with no place in a config file: ${unplaced.join(' ')}`);
});

test('PushLimiter: never more than max pushes at once, first come first served', async () => {
  const limiter = new PushLimiter(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const slowPush = limiter.wrap(async (options: PushOptions) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 20));
    order.push(Number(options.source));
    running--;
    return { exitCode: 0 } as PushResult;
  });
  await Promise.all([1, 2, 3, 4, 5].map((n) => slowPush({ source: String(n) } as PushOptions)));
  assert.is(peak, 2);
  assert.equal(order, [1, 2, 3, 4, 5]);
  assert.equal(limiter.stats(), { running: 0, waiting: 0 });
  assert.throws(() => new PushLimiter(0), RangeError);
});

test.run();
