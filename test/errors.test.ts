// Network-level failures through the CLI (and the library where the CLI's bound is too slow for a
// test): refused connections, ports that do not speak rsync, silence, over-long and endless text.
// Also the exit-code rule of a finished transfer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { freePort } from './helpers/daemon.js';
import { lsyncd } from './helpers/cli.js';
import { listModules } from '../src/transfer/client.js';
import { NotADaemonError, transferExitCode, EXIT } from '../protocol/errors.js';

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/** A TCP server whose connections get `onConnection`; all sockets are destroyed on close. */
async function tcpServer(onConnection: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  const port = await listen(server);
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test('connection refused: exit 10, naming host and port', async () => {
  const port = await freePort();
  const r = await lsyncd([`rsync://127.0.0.1:${port}/`]);
  assert.is(r.status, 10, r.stderr);
  assert.match(r.stderr, `127.0.0.1:${port}`);
  assert.match(r.stderr, 'ECONNREFUSED');
});

test('an HTTP server: a clear message, exit 5, no hang', async () => {
  const http = createHttpServer((_req, res) => res.end('hello'));
  const port = await listen(http);
  try {
    const r = await lsyncd([`rsync://127.0.0.1:${port}/`]);
    assert.is(r.status, 5, r.stderr);
    assert.match(r.stderr, 'rather than an rsync greeting');
    assert.match(r.stderr, 'HTTP/1.1 400');
  } finally {
    http.closeAllConnections();
    http.close();
  }
});

test('a port that sends nothing: --contimeout gives exit 35, --timeout exit 30', async () => {
  const silent = await tcpServer(() => {});
  try {
    const a = await lsyncd(['--contimeout', '1', `rsync://127.0.0.1:${silent.port}/`]);
    assert.is(a.status, 35, a.stderr);
    assert.match(a.stderr, 'no rsync greeting within 1 s');
    assert.ok(a.ms < 10_000);
    const b = await lsyncd(['--timeout', '1', `rsync://127.0.0.1:${silent.port}/`]);
    assert.is(b.status, 30, b.stderr);
    assert.match(b.stderr, 'timeout');
  } finally {
    silent.close();
  }
});

test('a port that sends nothing, no timeout given: bounded wait, then exit 5', async () => {
  const silent = await tcpServer(() => {});
  try {
    const started = Date.now();
    await listModules({ host: '127.0.0.1', port: silent.port, startupSeconds: 1 }).then(
      () => assert.unreachable(),
      (e) => {
        assert.instance(e, NotADaemonError);
        assert.is((e as NotADaemonError).exitCode, 5);
        assert.match((e as Error).message, 'is it an rsync daemon?');
      },
    );
    assert.ok(Date.now() - started < 5000);
  } finally {
    silent.close();
  }
});

/** Write `bytes` again and again for as long as the peer reads. */
function pumpForever(socket: Socket, bytes: Buffer): void {
  const pump = () => {
    while (!socket.destroyed && socket.write(bytes));
  };
  socket.on('drain', pump);
  pump();
}

test('an endless greeting line: refused at the bound, exit 5', async () => {
  const flood = await tcpServer((socket) => pumpForever(socket, Buffer.alloc(16 * 1024, 0x41)));
  try {
    const r = await lsyncd([`rsync://127.0.0.1:${flood.port}/`]);
    assert.is(r.status, 5, r.stderr);
    assert.match(r.stderr, 'longer than 4096 bytes');
  } finally {
    flood.close();
  }
});

test('an endless MOTD: refused after a bounded number of lines', async () => {
  const chatty = await tcpServer((socket) => {
    socket.write('@RSYNCD: 31.0 md5\n');
    pumpForever(socket, Buffer.from('motd line\n'.repeat(1000)));
  });
  try {
    const r = await lsyncd([`rsync://127.0.0.1:${chatty.port}/`]);
    assert.is(r.status, 5, r.stderr);
    assert.match(r.stderr, 'more than 10000 lines');
  } finally {
    chatty.close();
  }
});

test('bad arguments: exit 1', async () => {
  const r = await lsyncd(['--protocol', '26', 'rsync://127.0.0.1/']);
  assert.is(r.status, 1);
  const r2 = await lsyncd(['rsync://127.0.0.1//abs']);
  assert.is(r2.status, 1);
  assert.match(r2.stderr, 'must start with a module name');
  const r3 = await lsyncd(['--help']);
  assert.is(r3.status, 0);
  assert.match(r3.stdout.toString(), '--password-file');
  const r4 = await lsyncd(['--version']);
  assert.is(r4.status, 0);
  assert.match(r4.stdout.toString(), /lsyncd \d+\.\d+\.\d+/);
});

test('a finished transfer\'s exit code: 23 (io_error general or failures) beats 24 (vanished) beats 25 (delete limit)', () => {
  assert.is(transferExitCode(0, 0), EXIT.OK);
  assert.is(transferExitCode(4, 0), EXIT.DEL_LIMIT);
  assert.is(transferExitCode(2 | 4, 0), EXIT.VANISHED);
  assert.is(transferExitCode(1 | 2 | 4, 0), EXIT.PARTIAL);
  assert.is(transferExitCode(2, 1), EXIT.PARTIAL);
});

test.run();
