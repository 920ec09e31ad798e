// Address fuzz: every call that takes a numeric host, given hosts that net.isIP accepts
// but the system cannot use (an IPv6 zone naming no interface, a zone on an address that
// takes none), must refuse them as the docs promise for bad addresses: a TypeError with
// code ERR_INVALID_IP_ADDRESS, never a SystemError the caller would take for the kernel's.
//
// NETPOLL_FUZZ_RUNS sets the runs (default 150; `npm run fuzz` raises it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
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

test.run();
