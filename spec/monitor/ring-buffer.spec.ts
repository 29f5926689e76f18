import { expect } from 'chai';
import { InvalidArgumentError } from '../../lib/errors.js';
import { RingBuffer } from '../../lib/monitor/ring-buffer.js';

describe('RingBuffer', () => {
  it('keeps items oldest first until full', () => {
    const ring = new RingBuffer<number>(3);
    expect(ring.size).to.equal(0);
    expect(ring.toArray()).to.deep.equal([]);
    expect(ring.last()).to.equal(undefined);
    ring.push(1);
    ring.push(2);
    expect(ring.size).to.equal(2);
    expect(ring.toArray()).to.deep.equal([1, 2]);
    expect(ring.last()).to.equal(2);
  });

  it('overwrites the oldest item once full, never holding more than its capacity', () => {
    const ring = new RingBuffer<number>(3);
    for (let n = 1; n <= 10; n++) ring.push(n);
    expect(ring.size).to.equal(3);
    expect(ring.toArray()).to.deep.equal([8, 9, 10]);
    expect([...ring]).to.deep.equal([8, 9, 10]);
  });

  it('indexes from the oldest with at(i) and from the newest with at(-i)', () => {
    const ring = new RingBuffer<string>(4);
    for (const s of ['a', 'b', 'c', 'd', 'e', 'f']) ring.push(s);
    expect([ring.at(0), ring.at(1), ring.at(3)]).to.deep.equal(['c', 'd', 'f']);
    expect([ring.at(-1), ring.at(-4)]).to.deep.equal(['f', 'c']);
    expect(ring.at(4)).to.equal(undefined);
    expect(ring.at(-5)).to.equal(undefined);
  });

  it('works at capacity 1', () => {
    const ring = new RingBuffer<number>(1);
    ring.push(1);
    ring.push(2);
    expect(ring.toArray()).to.deep.equal([2]);
    expect(ring.at(-1)).to.equal(2);
  });

  it('clear() empties it and it fills again from scratch', () => {
    const ring = new RingBuffer<number>(2);
    for (let n = 1; n <= 5; n++) ring.push(n);
    ring.clear();
    expect(ring.size).to.equal(0);
    expect(ring.toArray()).to.deep.equal([]);
    ring.push(7);
    expect(ring.toArray()).to.deep.equal([7]);
  });

  it('toArray() returns a copy the buffer does not change afterwards', () => {
    const ring = new RingBuffer<number>(2);
    ring.push(1);
    const copy = ring.toArray();
    ring.push(2);
    ring.push(3);
    expect(copy).to.deep.equal([1]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, NaN]) {
      expect(() => new RingBuffer(bad), String(bad)).to.throw(InvalidArgumentError);
    }
  });
});
