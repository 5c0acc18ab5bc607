// Our config file format: YAML (eemeli/yaml, which keeps every node's offset, turned into line and
// column by its LineCounter). The document becomes ConfigValues carrying their positions, which
// the schema checks. docs/config.md; counterpart: none in lsyncd 2 (its configs are Lua: lua.ts).
import { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigPosition, type LsyncdConfig } from './model.js';
import { configFromValue } from './schema.js';
import type { ConfigValue } from './value.js';

/** Nodes visited at most, aliases counted each time they are followed (a "billion laughs" file). */
export const MAX_YAML_NODES = 100_000;

/** Read a YAML config's text; every mistake is a ConfigError at its line and column. */
export function readYamlConfig(text: string, file: string): LsyncdConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): ConfigPosition => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, col: pos.col };
  };
  const syntax = doc.errors[0];
  if (syntax) throw new ConfigError(at(syntax.pos[0]), `YAML: ${syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  if (doc.contents === null) throw new ConfigError(at(0), 'the file is empty: expected settings and a syncs: list');
  let visited = 0;
  const convert = (node: Node | null, fallback: number): ConfigValue => {
    if (++visited > MAX_YAML_NODES) throw new ConfigError(at(fallback), `more than ${MAX_YAML_NODES} values (aliases included)`);
    if (node === null) return { kind: 'scalar', value: null, at: at(fallback) };
    if (isAlias(node)) {
      const target = node.resolve(doc as Document);
      if (!target) throw new ConfigError(at(node.range?.[0]), `unknown alias *${node.source}`);
      return { ...convert(target, fallback), at: at(node.range?.[0]) };
    }
    const where = at(node.range?.[0] ?? fallback);
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return { kind: 'scalar', value: v, at: where };
      throw new ConfigError(where, `expected a string, a number or true/false, got ${typeof v}`);
    }
    if (isSeq(node)) return { kind: 'list', items: node.items.map((item) => convert(item as Node | null, node.range?.[0] ?? fallback)), at: where };
    if (isMap(node)) {
      return {
        kind: 'map',
        entries: node.items.map((pair) => {
          const key = pair.key as Node | null;
          const keyAt = at(key?.range?.[0] ?? node.range?.[0]);
          if (!isScalar(key) || typeof key.value !== 'string') throw new ConfigError(keyAt, 'expected a key (a word) here');
          return { key: key.value, keyAt, value: convert(pair.value as Node | null, key.range?.[2] ?? fallback) };
        }),
        at: where,
      };
    }
    throw new ConfigError(where, 'unexpected YAML node');
  };
  return configFromValue(convert(doc.contents as Node, 0), file);
}
