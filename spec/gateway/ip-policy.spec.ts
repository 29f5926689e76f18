import { expect } from 'chai';
import { InvalidArgumentError } from '../../lib/errors.js';
import { AddressPolicy, classifyAddress, parseIp, type AddressKind } from '../../lib/gateway/ip-policy.js';

describe('ip-policy', () => {
  const cases: [string, AddressKind, string?][] = [
    ['8.8.8.8', 'public'],
    ['93.184.215.14', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'sharedCgnat'],
    ['100.127.255.255', 'sharedCgnat'],
    ['100.128.0.1', 'public'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2606:4700::1111', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['febf::1', 'linkLocal'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['64:ff9b:1::1', 'reserved'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback', '127.0.0.1'],
    ['::ffff:7f00:1', 'loopback', '127.0.0.1'],
    ['::ffff:10.0.0.1', 'private', '10.0.0.1'],
    ['::ffff:8.8.8.8', 'public', '8.8.8.8'],
    ['::127.0.0.1', 'loopback', '127.0.0.1'],
    ['::a9fe:a9fe', 'linkLocal', '169.254.169.254'],
    ['64:ff9b::a9fe:a9fe', 'linkLocal', '169.254.169.254'],
    ['64:ff9b::192.168.1.1', 'private', '192.168.1.1'],
    ['64:ff9b::808:808', 'public', '8.8.8.8'],
    ['2002:7f00:1::', 'loopback', '127.0.0.1'],
    ['2002:a00:1:1::1', 'private', '10.0.0.1'],
    ['2002:808:808::1', 'public', '8.8.8.8'],
    ['localhost', 'reserved'],
    ['', 'reserved'],
    ['1.2.3', 'reserved'],
  ];
  for (const [address, kind, embedded] of cases) {
    it(`classifies ${address || "''"} as ${kind}${embedded ? ` (via ${embedded})` : ''}`, () => {
      expect(classifyAddress(address)).to.deep.equal(embedded ? { kind, embedded } : { kind });
    });
  }

  it('parses IPv6 with embedded dotted quads and compressed zeros', () => {
    expect([...parseIp('::ffff:1.2.3.4')!.bytes]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
    expect([...parseIp('1::')!.bytes]).to.deep.equal([0, 1, ...new Array(14).fill(0)]);
    expect([...parseIp('1:2:3:4:5:6:7:8')!.bytes]).to.deep.equal([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(parseIp('1:2:3:4:5:6:7:8:9')).to.equal(undefined);
    expect(parseIp('0x7f.1')).to.equal(undefined);
  });

  describe('AddressPolicy', () => {
    it('allows public addresses and refuses the rest with their kind', () => {
      const policy = new AddressPolicy();
      expect(policy.check('8.8.8.8')).to.deep.equal({ allowed: true, kind: 'public' });
      expect(policy.check('::ffff:169.254.169.254')).to.deep.equal({ allowed: false, kind: 'linkLocal', embedded: '169.254.169.254' });
    });

    it('allows listed IPs and CIDRs, matching IPv4-mapped forms to their IPv4 entry', () => {
      const policy = new AddressPolicy(['10.1.2.0/24', 'fd00::/8', '::ffff:192.168.1.1', '127.0.0.1']);
      for (const a of ['10.1.2.3', '::ffff:10.1.2.200', 'fd00::5', '192.168.1.1', '127.0.0.1', '::ffff:127.0.0.1']) {
        expect(policy.check(a).allowed, a).to.equal(true);
      }
      for (const a of ['10.1.3.1', 'fc00::1', '192.168.1.2', '127.0.0.2', '::1', '64:ff9b::a01:203']) {
        expect(policy.check(a).allowed, a).to.equal(false);
      }
    });

    it('rejects entries that are not IPs or CIDRs', () => {
      for (const bad of ['', 'example.com', '10.0.0.0/33', '10.0.0.0/8/8', '::/129', 'fe80::1%eth0', '10.0.0.0/-1']) {
        expect(() => new AddressPolicy([bad]), bad).to.throw(InvalidArgumentError);
      }
    });
  });
});
