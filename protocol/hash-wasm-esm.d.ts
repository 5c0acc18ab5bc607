// hash-wasm's ES module build, typed as the package's main entry (the same exports). checksum.ts
// imports it by path: the package's "main" is its UMD build, which node loads as CommonJS (through
// cjs-module-lexer) at about three times the CPU, on every start that makes a checksummer
// (docs/bench.md, "Pull: list and no-change CPU").
declare module 'hash-wasm/dist/index.esm.min.js' {
  export * from 'hash-wasm';
}
