// lsyncd 2's Lua configs, run as they are: the file is executed by fengari (Lua 5.3 in JavaScript)
// with lsyncd 2's `settings`, `sync` and `default.rsync` in its environment, so its own Lua (loops
// over tables, os.getenv, local helpers) works; each sync{} it makes becomes a SyncConfig in the
// command line's words. What only lsyncd 2's own core can do (custom actions, onCreate-style hooks,
// default.rsyncssh/default.direct) is refused naming the construct and the line. docs/config.md
// ("lsyncd 2 configs"); counterpart: lsyncd 2's lsyncd.lua (sync, settings, inherit) and
// default-rsync.lua (rsync.prepare, the checkgauge tables).
import fengari, { type LuaState } from 'fengari';
import { ConfigError, nameSyncs, type ConfigGlobals, type ConfigPosition, type LsyncdConfig, type SyncConfig, type SyncOption } from './model.js';
import { MAX_LIST_ITEMS, MAX_SYNCS, SYNC_OPTIONS, asBoolean, asName, asString, asStrings, optionArgs, unknownKey } from './schema.js';
import { describeValue, type ConfigEntry, type ConfigValue } from './value.js';

const { lua, lauxlib, lualib, to_luastring } = fengari;

/** The count hook fires every this many Lua instructions... */
const HOOK_EVERY = 10_000;
/** ...and a config that runs longer than this many firings (20 million instructions) is stopped. */
export const MAX_HOOK_FIRINGS = 2_000;
/** Values read out of the Lua state at most (tables' entries over all syncs), and table depth. */
export const MAX_LUA_VALUES = 200_000;
const MAX_DEPTH = 8;

/**
 * Run before the file: lsyncd 2's names. `default.rsync` and its siblings are marker tables
 * (identity is all a config uses of them); `sync{}` flattens a config's layers as lsyncd 2's
 * inherit does (own keys first, then each positional layer fills in what is missing, `rsync`
 * tables merged key by key) and hands the result and the call's line to JavaScript. Whatever
 * could change the machine (os.execute, os.remove, os.rename, os.exit, files through io) is
 * taken away: a config describes syncs, it does not run commands.
 */
const PRELUDE = `
local register_sync, register_settings = ...
local layers = {}
local function layer(name) local t = {}; layers[t] = name; return t end
default = { rsync = layer('default.rsync'), rsyncssh = layer('default.rsyncssh'), direct = layer('default.direct') }
local function flatten(cfg, out, names, depth)
  if depth > 16 then names[#names + 1] = '(layers nested too deep)'; return end
  for k, v in pairs(cfg) do
    if type(k) ~= 'number' then
      if out[k] == nil then out[k] = v
      elseif k == 'rsync' and type(v) == 'table' and type(out[k]) == 'table' then
        local merged = {}
        for kk, vv in pairs(v) do merged[kk] = vv end
        for kk, vv in pairs(out[k]) do merged[kk] = vv end
        out[k] = merged
      end
    end
  end
  for _, base in ipairs(cfg) do
    if layers[base] then names[#names + 1] = layers[base]
    elseif type(base) == 'table' then flatten(base, out, names, depth + 1)
    else names[#names + 1] = 'a ' .. type(base) end
  end
end
function sync(cfg)
  local line = debug.getinfo(2, 'l').currentline
  if type(cfg) ~= 'table' then register_sync(nil, line, ''); return end
  local out, names = {}, {}
  flatten(cfg, out, names, 0)
  register_sync(out, line, table.concat(names, '|'))
end
function settings(t)
  register_settings(t, debug.getinfo(2, 'l').currentline)
end
__lsyncd_settings = settings
os.execute, os.remove, os.rename, os.exit, os.tmpname = nil, nil, nil, nil, nil
io = { write = io.write }
`;

/** After the file: lsyncd 2.0's `settings = { ... }` (an assignment, not a call) is read too. */
const EPILOGUE = `
local register_settings = ...
if settings ~= __lsyncd_settings and type(settings) == 'table' then register_settings(settings, 0) end
`;

interface RawSync {
  config: ConfigValue | undefined;
  at: ConfigPosition;
  layers: string[];
}

/** A Lua value at `index` as a ConfigValue (tables as a list when their keys are 1..n, else a map). */
function readValue(L: LuaState, index: number, at: ConfigPosition, budget: { left: number }, depth = 0): ConfigValue {
  if (--budget.left < 0) throw new ConfigError(at, `more than ${MAX_LUA_VALUES} values handed to sync{} and settings{}`);
  index = lua.lua_absindex(L, index);
  const type = lua.lua_type(L, index);
  if (type === lua.LUA_TNIL) return { kind: 'scalar', value: null, at };
  if (type === lua.LUA_TBOOLEAN) return { kind: 'scalar', value: lua.lua_toboolean(L, index), at };
  if (type === lua.LUA_TNUMBER) return { kind: 'scalar', value: lua.lua_tonumber(L, index), at };
  if (type === lua.LUA_TSTRING) return { kind: 'scalar', value: lua.lua_tojsstring(L, index), at };
  if (type === lua.LUA_TFUNCTION) return { kind: 'function', at };
  if (type !== lua.LUA_TTABLE) throw new ConfigError(at, `a Lua ${fengari.to_jsstring(lua.lua_typename(L, type))} cannot be a setting`);
  if (depth >= MAX_DEPTH) throw new ConfigError(at, `tables nested more than ${MAX_DEPTH} deep`);
  const numbered = new Map<number, ConfigValue>();
  const entries: ConfigEntry[] = [];
  lua.lua_pushnil(L);
  while (lua.lua_next(L, index) !== 0) {
    const value = readValue(L, -1, at, budget, depth + 1);
    const keyType = lua.lua_type(L, -2);
    if (keyType === lua.LUA_TNUMBER && lua.lua_isinteger(L, -2)) numbered.set(lua.lua_tonumber(L, -2), value);
    else if (keyType === lua.LUA_TSTRING) entries.push({ key: lua.lua_tojsstring(L, -2), keyAt: at, value });
    else entries.push({ key: `[${fengari.to_jsstring(lua.lua_typename(L, keyType))}]`, keyAt: at, value });
    lua.lua_pop(L, 1);
    if (numbered.size > MAX_LIST_ITEMS) throw new ConfigError(at, `a table of more than ${MAX_LIST_ITEMS} items`);
  }
  const isList = entries.length === 0 && [...numbered.keys()].every((k) => k >= 1 && k <= numbered.size);
  if (isList) return { kind: 'list', items: Array.from({ length: numbered.size }, (_, i) => numbered.get(i + 1)!), at };
  for (const [k, v] of numbered) entries.push({ key: `[${k}]`, keyAt: at, value: v });
  return { kind: 'map', entries, at };
}

/** Run a Lua config's text: every sync{} and settings{} it makes, or a ConfigError at its line. */
export function runLuaConfig(text: string, file: string): LsyncdConfig {
  const L = lauxlib.luaL_newstate();
  const budget = { left: MAX_LUA_VALUES };
  const raw: RawSync[] = [];
  const settings: Array<{ value: ConfigValue; at: ConfigPosition }> = [];
  const at = (line: number): ConfigPosition => ({ file, line, col: 0 });
  // Errors found while Lua runs are kept and thrown once it returned: a JavaScript exception must
  // not unwind through the interpreter's frames.
  let failure: ConfigError | undefined;
  const keep = (f: () => void) => {
    if (failure) return;
    try {
      f();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      failure = e;
    }
  };
  try {
    lualib.luaL_openlibs(L);
    let firings = 0;
    lua.lua_sethook(
      L,
      (state) => {
        if (++firings > MAX_HOOK_FIRINGS) lauxlib.luaL_error(state, to_luastring(`the config ran for more than ${MAX_HOOK_FIRINGS * HOOK_EVERY} Lua instructions (an endless loop?)`));
      },
      lua.LUA_MASKCOUNT,
      HOOK_EVERY,
    );
    const registerSync = (state: LuaState): number => {
      const line = lua.lua_tonumber(state, 2);
      keep(() => {
        if (raw.length >= MAX_SYNCS) throw new ConfigError(at(line), `more than ${MAX_SYNCS} sync{} calls`);
        const config = lua.lua_type(state, 1) === lua.LUA_TTABLE ? readValue(state, 1, at(line), budget) : undefined;
        raw.push({ config, at: at(line), layers: lua.lua_tojsstring(state, 3).split('|').filter(Boolean) });
      });
      return 0;
    };
    const registerSettings = (state: LuaState): number => {
      const line = lua.lua_tonumber(state, 2);
      keep(() => settings.push({ value: readValue(state, 1, at(line), budget), at: at(line) }));
      return 0;
    };
    const runChunk = (source: string, name: string, args: Array<(state: LuaState) => number>) => {
      if (lauxlib.luaL_loadbuffer(L, to_luastring(source), null, to_luastring(name)) !== lua.LUA_OK) return lua.lua_tojsstring(L, -1);
      for (const f of args) lua.lua_pushjsfunction(L, f);
      if (lua.lua_pcall(L, args.length, 0, 0) !== lua.LUA_OK) return lua.lua_type(L, -1) === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -1) : 'a Lua error without a message';
      return undefined;
    };
    const preludeError = runChunk(PRELUDE, '=lsyncd', [registerSync, registerSettings]);
    if (preludeError) throw new Error(`the Lua prelude failed: ${preludeError}`);
    // Lua's own messages start with FILE:LINE: (the chunk is named after the file).
    const error = runChunk(text, `@${file}`, []) ?? runChunk(EPILOGUE, '=lsyncd', [registerSettings]);
    if (failure) throw failure;
    if (error) {
      const m = /^(?:.*?):(\d+): ([\s\S]*)$/.exec(error);
      throw new ConfigError(at(m ? Number(m[1]) : 0), `Lua: ${m ? m[2] : error}`);
    }
  } finally {
    lua.lua_close(L);
  }
  const globals = settingsFromLua(settings);
  if (!raw.length) throw new ConfigError(at(0), 'the config makes no sync{}: expected at least one sync { default.rsync, source = ..., target = ... }');
  return { file, globals, syncs: nameSyncs(raw.map(syncFromLua)) };
}

/** lsyncd 2's settings{} keys and ours. */
// lsyncd/lsyncd.lua: settingsCheckgauge
function settingsFromLua(calls: ReadonlyArray<{ value: ConfigValue; at: ConfigPosition }>): ConfigGlobals {
  const globals: ConfigGlobals = {};
  for (const { value, at } of calls) {
    if (value.kind === 'list' && value.items.length === 0) continue;
    if (value.kind !== 'map') throw new ConfigError(at, `settings: expected a table of settings, got ${describeValue(value)}`);
    for (const entry of value.entries) {
      const { key, value: v } = entry;
      switch (key) {
        case 'logfile':
          globals.logfile = asString(v, key, 'a file');
          break;
        case 'pidfile':
          globals.pidfile = asString(v, key, 'a file');
          break;
        case 'statusFile':
          globals.statusFile = asString(v, key, 'a file');
          break;
        case 'statusInterval':
          if (v.kind !== 'scalar' || typeof v.value !== 'number' || v.value < 0 || v.value > 86400) throw new ConfigError(at, `statusInterval: expected seconds, got ${describeValue(v)}`);
          // lsyncd 2 writes the file at most every statusInterval seconds (0: on every change).
          globals.statusInterval = Math.max(1, v.value);
          break;
        case 'nodaemon':
          globals.nodaemon = asBoolean(v, key);
          break;
        case 'insist':
          globals.insist = asBoolean(v, key);
          break;
        case 'logident':
          globals.logIdent = asString(v, key);
          break;
        case 'logfacility':
          globals.logFacility = asString(v, key, 'a syslog facility');
          break;
        case 'maxProcesses':
          if (v.kind !== 'scalar' || typeof v.value !== 'number' || !Number.isInteger(v.value) || v.value < 1 || v.value > 1000) throw new ConfigError(at, `maxProcesses: expected a count from 1 to 1000, got ${describeValue(v)}`);
          globals.maxPushes = v.value;
          break;
        // lsyncd 2's own tuning with no meaning here: the watcher reports closes and moves itself,
        // and each target's pending set is bounded (maxPending, docs/live.md).
        case 'inotifyMode':
        case 'maxDelays':
          break;
        case 'onepass':
          throw new ConfigError(at, 'settings.onepass: use lsyncd --once SOURCE TARGET for a single pass');
        default:
          throw unknownKey(entry, 'settings{}', ['logfile', 'pidfile', 'statusFile', 'statusInterval', 'nodaemon', 'insist', 'logident', 'logfacility', 'maxProcesses', 'inotifyMode', 'maxDelays']);
      }
    }
  }
  return globals;
}

/** lsyncd 2's hooks and actions: only its own core could run them. */
const CUSTOM_ACTIONS = ['action', 'init', 'onAttrib', 'onCreate', 'onModify', 'onDelete', 'onStartup', 'onMove', 'onFull', 'prepare', 'collect', 'full', 'crontab'];

/**
 * The rsync = { ... } keys of default.rsync and the options they are here (lsyncd 2's
 * shortFlags and long options). `true` means lsyncd 2's default is on.
 */
// lsyncd/default-rsync.lua: rsync.prepare (shortFlags and the long options)
const RSYNC_KEYS: Readonly<Record<string, string>> = {
  archive: 'archive',
  checksum: 'checksum',
  compress: 'compress',
  owner: 'owner',
  group: 'group',
  hard_links: 'hard-links',
  acls: 'acls',
  xattrs: 'xattrs',
  whole_file: 'whole-file',
  dry_run: 'dry-run',
  verbose: 'verbose',
  delete_excluded: 'delete-excluded',
  password_file: 'password-file',
  bwlimit: 'bwlimit',
  timeout: 'timeout',
  chmod: 'chmod',
  chown: 'chown',
  usermap: 'usermap',
  groupmap: 'groupmap',
  ipv4: 'ipv4',
  ipv6: 'ipv6',
  backup: 'backup',
  backup_dir: 'backup-dir',
  suffix: 'suffix',
  sparse: 'sparse',
};

/** rsync = { ... } keys that change nothing here: there is no rsync binary to run. */
const RSYNC_IGNORED = ['binary', 'protect_args', 'rsync_path', 'quiet'];

/** lsyncd 2's rsync keys whose rsync option we do not have: refused when on, accepted when false. */
const RSYNC_UNSUPPORTED = ['one_file_system', 'copy_links', 'copy_dirlinks', 'copy_unsafe_links', 'cvs_exclude', 'executability', 'existing', 'ignore_times', 'inplace', 'append', 'append_verify', 'keep_dirlinks', 'omit_dir_times', 'omit_link_times', 'prune_empty_dirs', 'update', 'rsh', 'temp_dir', 'specials'];

/** The short letters rsync = { _extra = {...} } may use, with their long option. */
const SHORT_OPTIONS: Readonly<Record<string, string>> = { a: 'archive', A: 'acls', X: 'xattrs', c: 'checksum', z: 'compress', o: 'owner', g: 'group', D: 'devices', H: 'hard-links', W: 'whole-file', n: 'dry-run', v: 'verbose', i: 'itemize-changes', p: 'perms', t: 'times' };

/**
 * `_extra = { '--bwlimit=100', '-z' }`: raw rsync options, taken when they are options a sync may
 * set (SYNC_OPTIONS, by rsync's long or short name), a value after `=` or as the next item.
 */
function extraOptions(v: ConfigValue, at: ConfigPosition): SyncOption[] {
  const words = asStrings(v, 'rsync._extra', 'an rsync option');
  const out: SyncOption[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const long = /^--([a-z-]+)(?:=([\s\S]*))?$/.exec(word);
    if (long) {
      const name = long[1]!.replace(/^no-/, '');
      const spec = SYNC_OPTIONS[name];
      const negated = long[1]!.startsWith('no-');
      if (!spec || (negated && !(spec.type === 'flag' && spec.off))) throw new ConfigError(at, `rsync._extra: ${word} is not an option lsyncd takes for a sync`);
      if (spec.type === 'value' || spec.type === 'repeat') {
        const value = long[2] ?? words[++i];
        if (value === undefined) throw new ConfigError(at, `rsync._extra: ${word} needs a value`);
        out.push({ key: 'rsync._extra', args: [spec.option, value], at });
      } else {
        if (long[2] !== undefined) throw new ConfigError(at, `rsync._extra: ${word} takes no value`);
        out.push({ key: 'rsync._extra', args: [negated && spec.type === 'flag' ? spec.off! : word], at });
      }
      continue;
    }
    const short = /^-([A-Za-z]+)$/.exec(word);
    if (short && [...short[1]!].every((c) => SHORT_OPTIONS[c])) {
      for (const c of short[1]!) {
        const spec = SYNC_OPTIONS[SHORT_OPTIONS[c]!]!;
        out.push({ key: 'rsync._extra', args: [spec.type === 'flag' || spec.type === 'count' ? spec.option : `-${c}`], at });
      }
      continue;
    }
    throw new ConfigError(at, `rsync._extra: ${JSON.stringify(word)} is not an option lsyncd takes for a sync`);
  }
  return out;
}

/** The target of default.rsync must be an rsync daemon: HOST::MODULE/PATH or rsync://HOST/MODULE/PATH. */
function daemonTarget(v: ConfigValue, at: ConfigPosition): string {
  const target = asString(v, 'target', 'a daemon address ("host::module/path")');
  if (!target.includes('::') && !/^rsync:\/\//i.test(target)) {
    throw new ConfigError(at, `target = ${JSON.stringify(target)}: lsyncd pushes to an rsync daemon; write "host::module/path" (a target over ssh or a local directory is not supported)`);
  }
  return target;
}

/** One flattened sync{} table as a SyncConfig, with lsyncd 2's defaults for default.rsync. */
// lsyncd/default-rsync.lua: the rsync table's defaults (delay 15, delete, -lts) and rsync.prepare
function syncFromLua(raw: RawSync): Omit<SyncConfig, 'name'> & { name?: string } {
  const at = raw.at;
  if (!raw.config) throw new ConfigError(at, 'sync: expected a table, sync { default.rsync, source = ..., target = ... }');
  const map = raw.config.kind === 'map' ? raw.config : raw.config.kind === 'list' && raw.config.items.length === 0 ? { kind: 'map' as const, entries: [], at } : undefined;
  if (!map) throw new ConfigError(at, 'sync: expected a table with source = and target =');
  for (const layer of raw.layers) {
    if (layer === 'default.rsyncssh' || layer === 'default.direct') {
      throw new ConfigError(at, `${layer} is not supported: lsyncd pushes to an rsync daemon (use default.rsync with target = "host::module/path")`);
    }
    if (layer !== 'default.rsync') throw new ConfigError(at, `sync: ${layer} where a layer table (default.rsync) was expected`);
  }
  const entries = new Map(map.entries.map((e) => [e.key, e]));
  for (const key of CUSTOM_ACTIONS) {
    const e = entries.get(key);
    if (!e) continue;
    if (key === 'init' && e.value.kind === 'scalar' && typeof e.value.value === 'boolean') continue;
    throw new ConfigError(at, `sync: ${key} (a custom action or hook) is not supported: lsyncd runs default.rsync's behaviour itself`);
  }
  if (!raw.layers.includes('default.rsync')) throw new ConfigError(at, 'sync: expected default.rsync as the first entry (sync { default.rsync, source = ..., target = ... })');

  let name: string | undefined;
  let source: string | undefined;
  let target: string | undefined;
  let delay = 15; // lsyncd 2's default.rsync delay
  let startup = true;
  let rsync: ConfigValue | undefined;
  const options: SyncOption[] = [];
  for (const entry of map.entries) {
    const { key, value: v } = entry;
    switch (key) {
      case 'name':
        name = asName(v, key);
        break;
      case 'source':
        source = asString(v, key, 'a local directory');
        break;
      case 'target':
        target = daemonTarget(v, at);
        break;
      case 'delay':
        if (v.kind !== 'scalar' || typeof v.value !== 'number' || !(v.value >= 0 && v.value <= 86400)) throw new ConfigError(at, `delay: expected seconds (0 to 86400), got ${describeValue(v)}`);
        delay = v.value;
        break;
      case 'exclude':
        options.push({ key, args: asStrings(v, key, 'a pattern').flatMap((p) => ['--exclude', p]), at });
        break;
      case 'excludeFrom':
        options.push({ key, args: ['--exclude-from', asString(v, key, 'a file of patterns')], at });
        break;
      case 'filter':
        options.push({ key, args: asStrings(v, key, 'an rsync filter rule').flatMap((r) => ['--filter', r]), at });
        break;
      case 'filterFrom':
        // lsyncd 2 reads the file as filter rules (rsync's --filter='. FILE').
        options.push({ key, args: ['--filter', `. ${asString(v, key, 'a file of filter rules')}`], at });
        break;
      case 'delete': {
        if (v.kind === 'scalar' && v.value === true) break;
        if (v.kind === 'scalar' && v.value === false) {
          options.push({ key, args: ['--no-delete'], at });
          break;
        }
        // lsyncd/default-rsync.lua: init and action (--delete for 'startup' or 'running' only)
        if (v.kind === 'scalar' && (v.value === 'startup' || v.value === 'running')) {
          options.push({ key, args: ['--delete-only', v.value], at });
          break;
        }
        throw new ConfigError(at, `delete: expected true, false, 'startup' or 'running', got ${describeValue(v)}`);
      }
      case 'init':
        startup = asBoolean(v, key);
        break;
      case 'rsync':
        rsync = v;
        break;
      // lsyncd 2's per-sync tuning that means nothing here: one batch runs per target at a time and
      // the pending set is bounded (docs/live.md).
      case 'maxProcesses':
      case 'maxDelays':
      case 'batchSizeLimit':
        break;
      case 'host':
      case 'targetdir':
      case 'ssh':
      case 'tunnel':
        throw new ConfigError(at, `sync: ${key} belongs to default.rsyncssh, which is not supported (use target = "host::module/path")`);
      default:
        throw unknownKey({ ...entry, keyAt: at }, 'sync{}', ['source', 'target', 'delay', 'exclude', 'excludeFrom', 'filter', 'filterFrom', 'delete', 'init', 'rsync', 'maxProcesses', 'maxDelays', 'name']);
    }
  }
  if (source === undefined) throw new ConfigError(at, 'sync: source = is missing (the local directory to mirror)');
  if (target === undefined) throw new ConfigError(at, 'sync: target = is missing ("host::module/path")');
  options.unshift({ key: 'delay', args: ['--delay', String(delay)], at });
  if (!startup) options.push({ key: 'init', args: ['--no-startup'], at });
  options.push(...rsyncOptions(rsync, at));
  // lsyncd 2 mirrors the source directory's contents (it makes the source path end in '/').
  return { ...(name !== undefined && { name }), source: source.endsWith('/') ? source : `${source}/`, targets: [target], options, at };
}

/** rsync = { ... }: lsyncd 2 runs rsync -lts plus what the table turns on (archive: -rlptgoD). */
// lsyncd/default-rsync.lua: rsync.prepare
function rsyncOptions(v: ConfigValue | undefined, at: ConfigPosition): SyncOption[] {
  const entries = v === undefined ? [] : v.kind === 'map' ? v.entries : v.kind === 'list' && v.items.length === 0 ? [] : undefined;
  if (!entries) throw new ConfigError(at, `rsync: expected a table of rsync settings, got ${describeValue(v!)}`);
  const on = (key: string) => entries.some((e) => e.key === key && e.value.kind === 'scalar' && e.value.value === true);
  const given = (key: string) => entries.some((e) => e.key === key);
  const options: SyncOption[] = [];
  const archive = on('archive');
  // -p only with perms or archive (lsyncd 2's default is -lts); times default on; links always on here.
  if (!(on('perms') || (archive && !given('perms')))) options.push({ key: 'rsync.perms', args: ['--no-perms'], at });
  for (const entry of entries) {
    const { key, value } = entry;
    const named = `rsync.${key}`;
    if (key === '_extra') options.push(...extraOptions(value, at));
    else if (key === 'perms' || key === 'recursive') asBoolean(value, named);
    else if (key === 'times') {
      if (!asBoolean(value, named)) options.push({ key: named, args: ['--no-times'], at });
    } else if (key === 'links') {
      if (!asBoolean(value, named)) throw new ConfigError(at, 'rsync.links = false is not supported: symlinks are always kept as symlinks');
    } else if (key === 'devices') {
      // lsyncd 2 sends -D only for devices and specials together; -D here covers both.
      if (asBoolean(value, named)) options.push({ key: named, args: ['-D'], at });
    } else if (Object.hasOwn(RSYNC_KEYS, key)) {
      const ours = RSYNC_KEYS[key]!;
      options.push({ key: named, args: optionArgs(SYNC_OPTIONS[ours]!, value, named), at });
    } else if (RSYNC_IGNORED.includes(key)) continue;
    else if (RSYNC_UNSUPPORTED.includes(key)) {
      if (value.kind === 'scalar' && (value.value === false || value.value === null)) continue;
      throw new ConfigError(at, `${named} is not supported by lsyncd (its rsync option is not implemented); remove it or set it to false`);
    } else throw unknownKey({ ...entry, keyAt: at }, 'rsync = {...}', [...Object.keys(RSYNC_KEYS), 'perms', 'times', 'links', 'devices', '_extra', ...RSYNC_IGNORED, ...RSYNC_UNSUPPORTED]);
  }
  return options;
}
