import { InvalidArgumentError } from '../errors.js';

/**
 * A fixed-capacity FIFO: once full, each `push` overwrites the oldest item. Storage is
 * allocated once; pushing never allocates.
 *
 * @example
 * const ring = new RingBuffer<number>(3);
 * for (const n of [1, 2, 3, 4]) ring.push(n);
 * ring.toArray(); // [2, 3, 4]
 * ring.last();    // 4
 */
export class RingBuffer<T> implements Iterable<T> {
  private readonly items: (T | undefined)[];
  /** Index the next `push` writes to. */
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(`RingBuffer capacity must be a positive integer, got ${capacity}; pass 1 or more.`);
    }
    this.items = new Array<T | undefined>(capacity).fill(undefined);
  }

  /** Items held (at most `capacity`). */
  get size(): number {
    return this.count;
  }

  /** Append `item`, dropping the oldest item when full. */
  push(item: T): void {
    this.items[this.head] = item;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** The `i`-th item, oldest first (0 = oldest); negative `i` counts from the newest (-1 = newest). */
  at(i: number): T | undefined {
    if (i < 0) i += this.count;
    if (i < 0 || i >= this.count) return undefined;
    return this.items[(this.head - this.count + i + this.capacity) % this.capacity];
  }

  /** The newest item. */
  last(): T | undefined {
    return this.at(-1);
  }

  /** Drop every item (and the references to them). */
  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** A copy of the items, oldest first. */
  toArray(): T[] {
    const out = new Array<T>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.at(i) as T;
    return out;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.count; i++) yield this.at(i) as T;
  }
}
