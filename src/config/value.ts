// A config file's values with the place each one was written, the same for every format: the
// YAML reader and the Lua runner produce these, the schema checks them. docs/config.md.
import type { ConfigPosition } from './model.js';

export type ConfigValue =
  | { kind: 'scalar'; value: string | number | boolean | null; at: ConfigPosition }
  | { kind: 'list'; items: ConfigValue[]; at: ConfigPosition }
  | { kind: 'map'; entries: ConfigEntry[]; at: ConfigPosition }
  /** A Lua function (lsyncd 2's custom actions and hooks): never a valid setting here. */
  | { kind: 'function'; at: ConfigPosition };

export interface ConfigEntry {
  key: string;
  keyAt: ConfigPosition;
  value: ConfigValue;
}

/** How a value reads in an error message: `"abc"`, `12`, `a list`, `a table`. */
export function describeValue(v: ConfigValue): string {
  switch (v.kind) {
    case 'scalar':
      return v.value === null ? 'nothing' : typeof v.value === 'string' ? JSON.stringify(v.value.length > 60 ? v.value.slice(0, 57) + '...' : v.value) : String(v.value);
    case 'list':
      return 'a list';
    case 'map':
      return 'a map';
    case 'function':
      return 'a function';
  }
}
