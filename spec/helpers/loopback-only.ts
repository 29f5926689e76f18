import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import { expect } from 'chai';

const LOOPBACK = new Set(['127.0.0.1', '::1']);

/** A tripwire over every outgoing TCP connection of the process; see {@link loopbackOnly}. */
export interface LoopbackTripwire {
  /** Connections that were stopped because they would have left 127.0.0.1 / ::1. */
  readonly violations: string[];
  restore(): void;
}

/**
 * Stops any TCP connection to an address other than 127.0.0.1 or ::1 before it is made, and
 * records it. Specs that feed a network guard private or public addresses install it, so that
 * a bug in the guard shows up as a violation instead of traffic leaving the machine.
 *
 * @example
 * const wire = loopbackOnly();
 * // … run the spec …
 * wire.restore();
 * expect(wire.violations).to.deep.equal([]);
 */
export function loopbackOnly(): LoopbackTripwire {
  const violations: string[] = [];
  const original = net.Socket.prototype.connect;
  const stop = (socket: net.Socket, what: string) => {
    violations.push(what);
    process.nextTick(() => socket.destroy(new Error(`loopback tripwire: connection to ${what} stopped`)));
    return socket;
  };

  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.createConnection hands connect() its normalised [options, callback] array.
    const first = (Array.isArray(args[0]) ? args[0][0] : args[0]) as Record<string, unknown> | number | string;
    if (typeof first !== 'object' || first === null) {
      // connect(port[, host]): only a loopback literal passes.
      const host = typeof args[1] === 'string' ? args[1] : '';
      return LOOPBACK.has(host) ? original.apply(this, args as never) : stop(this, host || 'localhost');
    }
    if (first.path) return original.apply(this, args as never);
    const host = typeof first.host === 'string' ? first.host : 'localhost';
    if (net.isIP(host)) return LOOPBACK.has(host) ? original.apply(this, args as never) : stop(this, host);
    const lookup = (typeof first.lookup === 'function' ? first.lookup : dnsLookup) as LookupFunction;
    first.lookup = ((hostname, options, callback) =>
      lookup(hostname, options, (err, address, family) => {
        const list = typeof address === 'string' ? [address] : (address as LookupAddress[]).map((a) => a.address);
        const outside = err ? [] : list.filter((a) => !LOOPBACK.has(a));
        if (outside.length > 0) {
          violations.push(`${hostname} → ${outside.join(', ')}`);
          return callback(new Error(`loopback tripwire: ${hostname} resolved outside loopback`), '');
        }
        callback(err, address, family);
      })) as LookupFunction;
    return original.apply(this, args as never);
  } as typeof original;

  return {
    violations,
    restore: () => {
      net.Socket.prototype.connect = original;
    },
  };
}

/**
 * Per-spec hooks of the network guard specs: a fresh fixture state and tripwire before each
 * spec; after it, every guard closed and a failure if any connection would have left loopback.
 */
export function guardedNetworkHooks(reset: () => void, guards: { close(): void }[]): void {
  let wire: LoopbackTripwire;
  beforeEach(() => {
    reset();
    wire = loopbackOnly();
  });
  afterEach(() => {
    for (const g of guards.splice(0)) g.close();
    wire.restore();
    expect(wire.violations, 'connections that would have left loopback').to.deep.equal([]);
  });
}
