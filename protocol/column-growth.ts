// Growing and shrinking the typed-array columns of the packed file lists (flist-packed.ts for the
// sender, received-list.ts for the receiver; docs/protocol.md [flist-order] is what they hold).
// A column outgrown by a copy is garbage at once, but it has lived long enough to be promoted, so
// V8 would keep its backing store until the next full collection: a 200k-entry list left ~18 MB of
// outgrown columns resident at its peak (docs/bench.md, "Peak memory"). Transferring the old
// buffer to a structured clone that nobody keeps frees it at the next scavenge instead. Only whole
// buffers that the column owns are released (never a slice of Buffer's pool), and only columns:
// lists hand out views of their name arenas, so an arena is never released this way.
// Pure (structuredClone is a language-level global, no I/O). No rsync counterpart (rsync reallocs).

/** The typed arrays the lists keep their columns in. */
export type Column = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

/** Give a column's memory back now; the column is empty (detached) afterwards. */
export function releaseColumn(column: Column): void {
  const buffer = column.buffer;
  if (buffer instanceof ArrayBuffer && column.byteOffset === 0 && buffer.byteLength === column.byteLength && buffer.byteLength > 0) {
    structuredClone(buffer, { transfer: [buffer] });
  }
}

/**
 * `column`'s first `keep` elements in a new column of `length` elements (longer to grow, shorter
 * to trim); the old column is released. Nobody may hold the old column or a view of it.
 */
export function resizedColumn<T extends Column>(column: T, length: number, keep: number, make: new (n: number) => T): T {
  const next = new make(length);
  next.set(keep === column.length ? (column as never) : (column.subarray(0, keep) as never));
  releaseColumn(column);
  return next;
}
