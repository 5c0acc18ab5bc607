// The rsync daemon protocol as a library: no fs, net, process or timers in here. Give it a
// ByteSource/ByteSink (a socket, a pipe, a capture) and it speaks the protocol over them.
export * from './errors.js';
export * from './constants.js';
export * from './modes.js';
export * from './io.js';
export * from './varint.js';
export * from './mplex.js';
export * from './daemon.js';
export * from './compat.js';
export * from './args.js';
export * from './server-args.js';
export * from './session.js';
export * from './checksum.js';
export * from './sums.js';
export * from './match.js';
export * from './flist.js';
export * from './filter.js';
export * from './token.js';
export * from './request.js';
export * from './sender.js';
export * from './local-tree.js';
export * from './generator.js';
export * from './delete.js';
export * from './receiver.js';
export * from './flist-recv.js';
export * from './list-only.js';
export * from './stats.js';
