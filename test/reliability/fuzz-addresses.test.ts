// Address fuzz: every call that takes a numeric host, given hosts that net.isIP accepts
// but the system cannot use (an IPv6 zone naming no interface, a zone on an address that
// takes none), must refuse them as the docs promise for bad addresses: a TypeError with
// code ERR_INVALID_IP_ADDRESS, never a SystemError the caller would take for the kernel's.
//
// Unix names: whatever localAddress/remoteAddress report goes back into dialUnix and
// reaches the same listener, never a file spelled like it (abstract names were once
// reported as '@name', which dialUnix read as a file); listenUnix's mode is exact under
// any umask and touches no other file; and any mode value is either taken or refused with
// an error that names it (null was once reported as "Received -1").
//
// NETPOLL_FUZZ_RUNS sets the runs (default 150; `npm run fuzz` raises it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { socket } from '../../src/index.js';
import { assertProperty } from './support.js';

const RUNS = Number(process.env.NETPOLL_FUZZ_RUNS ?? 150);

/** Whether `zone` names (or numbers) a network interface of this machine. */
function isInterface(zone: string): boolean {
  if (/^\d+$/.test(zone)) return true; // an index: the kernel judges it (ENODEV), not the parser
  if (zone in os.networkInterfaces()) return true;
  try {
    return fs.existsSync(`/sys/class/net/${zone}`); // interfaces without addresses too (Linux)
  } catch {
    return false;
  }
}

const zoneArb = fc.stringMatching(/^[0-9A-Za-z.-]{1,15}$/).filter((z) => !isInterface(z) && !z.includes('/'));
const linkLocalArb = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([a, b]) => `fe80::${a.toString(16)}:${b.toString(16)}`);
const hostArb = fc
  .tuple(fc.oneof(linkLocalArb, fc.ipV6(), fc.constantFrom('::1', 'ff02::1', 'fe80::1')), zoneArb)
  .map(([address, zone]) => `${address}%${zone}`)
  .filter((host) => net.isIP(host) === 6);

type Taker = (host: string) => unknown;
const takers: Record<string, Taker> = {
  listenTCP: (host) => socket.listenTCP(host, 0),
  dialTCP: (host) => socket.dialTCP(host, 9, { nonblocking: true }),
  bindUDP: (host) => socket.bindUDP(host, 0),
  sendTo: (host) => {
    const fd = socket.bindUDP('::1', 0);
    try {
      return socket.sendTo(fd, Buffer.from('x'), host, 9);
    } finally {
      socket.close(fd);
    }
  },
};

for (const [name, take] of Object.entries(takers)) {
  test(`${name} refuses a zone that names no interface as a TypeError (ERR_INVALID_IP_ADDRESS)`, async () => {
    await assertProperty(
      fc.property(hostArb, (host) => {
        let result: unknown;
        try {
          result = take(host);
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          if (!(err instanceof TypeError) || err.code !== 'ERR_INVALID_IP_ADDRESS') {
            throw new Error(`${name}(${JSON.stringify(host)}) threw ${err.constructor.name} ${err.code}: ${err.message}`);
          }
          assert.match(err.message, host);
          return;
        }
        if (typeof result === 'number' && result >= 0 && name !== 'sendTo') socket.close(result);
        throw new Error(`${name}(${JSON.stringify(host)}) took a zone that names no interface`);
      }),
      { numRuns: RUNS },
    );
  });
}

const linux = process.platform === 'linux';
let serial = 0;

/** Connects to what localAddress reports and checks that `lfd` (and no decoy) took it. */
function assertRoundTrip(lfd: number, expected: string, decoys: number[]): void {
  const reported = socket.localAddress(lfd).address;
  assert.is(reported, expected, 'localAddress reports the name as given');
  const c = socket.dialUnix(reported);
  try {
    assert.is(socket.remoteAddress(c).address, expected, 'remoteAddress reports it the same way');
    const s = socket.accept(lfd);
    assert.ok(s !== null, `dialUnix(${JSON.stringify(reported)}) reached the listener`);
    socket.close(s!.fd);
    for (const d of decoys) assert.is(socket.accept(d), null, 'no decoy was reached');
  } finally {
    socket.close(c);
  }
}

// Names a user might pick, including the spellings other tools use for abstract names.
const nameArb = fc.stringMatching(/^[@A-Za-z0-9._ -]{1,40}$/).filter((n) => n !== '.' && n !== '..');

test('Unix file names round-trip through localAddress and dialUnix, even ones that start with @', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fuzz-unix-'));
  try {
    await assertProperty(
      fc.property(nameArb, (name) => {
        const p = path.join(dir, `${serial++}${name}`);
        const lfd = socket.listenUnix(p);
        try {
          assertRoundTrip(lfd, p, []);
        } finally {
          socket.close(lfd);
          fs.rmSync(p, { force: true });
        }
      }),
      { numRuns: RUNS },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('abstract names round-trip through localAddress and dialUnix, never reaching a planted file of the same spelling', async () => {
  if (!linux) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fuzz-abstract-'));
  const cwd = process.cwd();
  process.chdir(dir); // where a name read as a relative path would land
  try {
    await assertProperty(
      fc.property(fc.string({ minLength: 0, maxLength: 40 }).map((s) => s.replace(/[^\x00-\x7f]/g, 'x')), (raw) => {
        const name = `\0${process.pid}-${serial++}${raw}`;
        const lfd = socket.listenUnix(name);
        const plain = name.slice(1).replace(/[\0/]/g, '_');
        const decoys: number[] = [];
        try {
          for (const spelled of [`@${plain}`, plain]) decoys.push(socket.listenUnix(path.join(dir, spelled)));
          assertRoundTrip(lfd, name, decoys);
        } finally {
          for (const fd of [lfd, ...decoys]) socket.close(fd);
          for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
        }
      }),
      { numRuns: RUNS },
    );
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('listenUnix gives exactly the mode asked for under any umask, and leaves every other file as it was', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fuzz-mode-'));
  const canary = path.join(dir, 'canary');
  fs.writeFileSync(canary, 'x', { mode: 0o600 });
  const before = process.umask();
  try {
    await assertProperty(
      fc.property(fc.integer({ min: 0, max: 0o777 }), fc.integer({ min: 0, max: 0o777 }), (mode, umask) => {
        process.umask(umask);
        const p = path.join(dir, `s${serial++}.sock`);
        const lfd = socket.listenUnix(p, { mode });
        try {
          assert.is(fs.statSync(p).mode & 0o7777, mode, `mode 0o${mode.toString(8)} under umask 0o${umask.toString(8)}`);
          assert.is(process.umask(umask), umask, 'the process umask is untouched');
          assert.is(fs.statSync(canary).mode & 0o7777, 0o600, 'the canary keeps its mode');
        } finally {
          socket.close(lfd);
          fs.rmSync(p, { force: true });
        }
      }),
      { numRuns: RUNS },
    );
  } finally {
    process.umask(before);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('any mode value is taken or refused with a TypeError/RangeError that names the value given', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fuzz-modearg-'));
  try {
    await assertProperty(
      fc.property(fc.oneof(fc.anything(), fc.integer({ min: -1000, max: 100000 }), fc.double()), (mode) => {
        const p = path.join(dir, `a${serial++}.sock`);
        let fd: number;
        try {
          fd = socket.listenUnix(p, { mode: mode as number });
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          assert.ok(err instanceof TypeError || err instanceof RangeError, `${String(err)}`);
          assert.ok(err.code === 'ERR_INVALID_ARG_TYPE' || err.code === 'ERR_OUT_OF_RANGE' || err.code === 'ERR_INVALID_ARG_VALUE', err.code);
          if (typeof mode === 'number') assert.match(err.message, `Received ${mode}`);
          if (mode === null) assert.match(err.message, 'Received null');
          assert.not.ok(mode !== -1 && / -1$/.test(err.message), `a placeholder in: ${err.message}`);
          return;
        }
        socket.close(fd);
        fs.rmSync(p, { force: true });
        assert.ok(mode === undefined || (Number.isInteger(mode) && (mode as number) >= 0 && (mode as number) <= 0o777), `took ${String(mode)}`);
      }),
      { numRuns: RUNS },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
