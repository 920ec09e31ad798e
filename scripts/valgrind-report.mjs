#!/usr/bin/env node
// Reads a valgrind memcheck log and fails when an error record's stack passes through
// the addon: invalid reads/writes/frees, uninitialised values, or definite leaks.
// Records that never touch netpoll.node (Node's and V8's own) are only counted.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const text = readFileSync(file, 'utf8');
// Each record is a run of "==pid== " lines ended by an empty "==pid==" line.
const records = [];
let current = [];
for (const raw of text.split('\n')) {
  const line = raw.replace(/^==\d+==\s?/, '');
  if (line.trim() === '') {
    if (current.length) records.push(current);
    current = [];
  } else current.push(line);
}
if (current.length) records.push(current);

const kinds = /^(Invalid (read|write|free)|Mismatched free|Conditional jump or move depends on uninitialised|Use of uninitialised value|Syscall param .* (uninitialised|unaddressable)|Source and destination overlap|.* bytes in .* blocks are definitely lost)/;
const ours = /netpoll\.node|binding\.cc|fdio\.c|selector_epoll\.c|waker_eventfd\.c|selector_kqueue\.c/;
const found = records.filter((r) => kinds.test(r[0]));
const mine = found.filter((r) => r.some((l) => ours.test(l)));
const summary = text.match(/ERROR SUMMARY: (\d+) errors/);
const definitely = text.match(/definitely lost: ([\d,]+) bytes in ([\d,]+) blocks/);
console.log(
  `  valgrind: ${summary ? summary[1] : '?'} errors in all, ${found.length - mine.length} outside the addon (Node/V8), ${mine.length} through the addon; ` +
    `definitely lost overall: ${definitely ? `${definitely[1]} bytes in ${definitely[2]} blocks` : '0 bytes'}`,
);
for (const r of mine.slice(0, 10)) console.log(`  ---\n  ${r.slice(0, 25).join('\n  ')}`);
process.exitCode = mine.length > 0 ? 1 : 0;
