// Config files (docs/config.md): ours in YAML, lsyncd 2's in Lua, read into one model.
export { loadConfig, MAX_CONFIG_BYTES } from './load.js';
export { looksLikeConfig, ConfigError, positionText, syncIdentity, type ConfigGlobals, type ConfigLogLevel, type ConfigPosition, type LsyncdConfig, type SyncConfig, type SyncOption } from './model.js';
export { SYNC_OPTIONS } from './schema.js';
