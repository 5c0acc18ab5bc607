#!/usr/bin/env node
// The `lsyncd` command (package.json "bin"): answers `lsyncd --version` itself, in node's own
// start-up time and memory (issue 12: at most 0.1 s and 50 MB), and hands every other command
// line to main.ts (commander, the options and the commands, each loaded when it runs).
// docs/bench.md "CLI start".
import { versionLine } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${versionLine()}\n`);
else await import('./main.js');
