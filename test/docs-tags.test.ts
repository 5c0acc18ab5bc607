// docs/protocol.md gives every step a stable tag; the code cites it where the step is. This keeps
// the two from drifting: every tag the code cites is defined, and every step tag is cited.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../../', import.meta.url));
const spec = readFileSync(join(root, 'docs/protocol.md'), 'utf8');

// A tag is defined where a heading or a step starts with it: "## 6. Setup phase [setup]",
// "1. [setup-compat] ...", "- [codec-int] ...".
const defined = new Set([...spec.matchAll(/^(?:##[^\n[]*|\s*(?:\d+\.|-)\s*)\[([a-z0-9-]+)\]/gm)].map((m) => m[1]!));

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

// Citations: "docs/protocol.md [tag], [tag]" in headers, and a bare "[tag]" ending a comment line.
function cited(text: string): string[] {
  const tags: string[] = [];
  for (const line of text.split('\n')) {
    const comment = /\/\/(.*)$|^\s*\*(.*)$/.exec(line);
    if (!comment) continue;
    const body = comment[1] ?? comment[2] ?? '';
    if (!/docs\/protocol\.md|\[[a-z]+(?:-[a-z0-9]+)*\](?:\s+\[[a-z0-9-]+\])*\)?\s*$|^\s*\[[a-z]+-[a-z0-9-]+\]/.test(body)) continue;
    for (const m of body.matchAll(/\[([a-z]+(?:-[a-z0-9]+)*)\]/g)) tags.push(m[1]!);
  }
  return tags;
}

const citations = new Map<string, string[]>();
for (const file of [...sources('protocol'), ...sources('src')]) {
  for (const tag of cited(readFileSync(file, 'utf8'))) {
    if (!citations.has(tag)) citations.set(tag, []);
    citations.get(tag)!.push(file.slice(root.length));
  }
}

test('docs/protocol.md defines tags, sections and steps alike', () => {
  assert.ok(defined.has('greeting') && defined.has('greeting-ours') && defined.has('stats'), [...defined].join(' '));
});

test('every tag the code cites is defined in docs/protocol.md', () => {
  const unknown = [...citations].filter(([tag]) => !defined.has(tag) && !tag.endsWith('-'));
  assert.equal(unknown.map(([tag, files]) => `[${tag}] in ${files.join(', ')}`), []);
});

test('every step tag of docs/protocol.md is cited by the code where the step is', () => {
  const steps = [...spec.matchAll(/^\s*(?:\d+\.|-)\s*\[([a-z0-9-]+)\]/gm)].map((m) => m[1]!);
  assert.ok(steps.length > 50, `${steps.length} step tags`);
  assert.equal(steps.filter((tag) => !citations.has(tag)), []);
});

test.run();
