// The README's first command, `lsyncd demo`: our daemon and a live mirror into it on this machine
// alone. It must say where things are, mirror the sample tree, carry an edit made while it runs
// into the module, and stop cleanly (exit 0) when told.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from './helpers/cli.js';

test('lsyncd demo: serves a module, mirrors the sample tree, carries a live edit, stops with exit 0', async () => {
  const child = spawn(process.execPath, [CLI, 'demo', '--for', '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const until = async (what: string, check: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) assert.unreachable(`${what}\n${out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  try {
    await until('the demo says what to try', () => /try: echo hello > (\S+) ; ls (\S+)/.test(out));
    const [, file, mirror] = /try: echo hello > (\S+) ; ls (\S+)/.exec(out)!;
    assert.match(out, /lsyncd serve is an rsync daemon on 127\.0\.0\.1:\d+, module "mirror"/);
    assert.ok(existsSync(join(mirror!, 'README.txt')), 'the sample tree is mirrored at startup');
    assert.ok(existsSync(join(mirror!, 'docs', 'notes.txt')));
    writeFileSync(file!, 'hello\n');
    await until('the edit reaches the module', () => existsSync(join(mirror!, 'hello.txt')) && readFileSync(join(mirror!, 'hello.txt'), 'utf8') === 'hello\n');
    assert.is(await exited, 0, out);
    assert.match(out, /stopped; the mirror is left in/);
  } finally {
    child.kill();
  }
});

test.run();
