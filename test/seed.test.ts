// `npm start`: the seed example exchanges "Hello" messages and exits by itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

test('the seed example exchanges Hello messages through polling() and exits by itself', () => {
  const script = path.resolve(__dirname, '..', 'examples', 'seed.js');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 10000, env: { ...process.env, ROUND_TRIPS: '3' } });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.filter((l) => l === 'Received data from server: Hello, client!').length, 3);
  assert.is(lines.filter((l) => l === 'Received data from client: Hello, server!').length, 3);
  // gnet's words, then a line that says this is the normal end.
  assert.is(lines[lines.length - 2], 'Poller exited with error: server is going to be shutdown');
  assert.match(lines[lines.length - 1], /^\(expected: that is ErrEngineShutdown, .* after 3 round trips; not a failure\)$/);
});

test.run();
