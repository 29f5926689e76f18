/**
 * A bounded FIFO that delivers items one at a time to one subscriber. When the
 * subscriber is slow and the queue is full, new items are dropped and counted, so a slow
 * plugin never grows host memory without bound.
 */
export class DeliveryQueue<T> {
  private readonly items: { item: T; done: (r: DeliveryOutcome) => void }[] = [];
  private draining = false;
  private inFlight = 0;
  dropped = 0;
  delivered = 0;

  constructor(
    private readonly limit: number,
    private readonly deliver: (item: T) => Promise<void>,
  ) {}

  /** Items held: waiting, plus the one being delivered. */
  get size(): number {
    return this.items.length + this.inFlight;
  }

  /** Queue an item; resolves when it was delivered, failed, or was dropped. */
  push(item: T): Promise<DeliveryOutcome> {
    if (this.size >= this.limit) {
      this.dropped++;
      return Promise.resolve({ status: 'dropped' });
    }
    return new Promise((done) => {
      this.items.push({ item, done });
      if (!this.draining) void this.drain();
    });
  }

  /** Drop everything still queued (the subscriber went away). */
  clear(): void {
    for (const { done } of this.items.splice(0)) done({ status: 'dropped' });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.items.length > 0) {
      const { item, done } = this.items.shift()!;
      this.inFlight = 1;
      try {
        await this.deliver(item);
        this.delivered++;
        done({ status: 'delivered' });
      } catch (error) {
        done({ status: 'failed', error });
      }
      this.inFlight = 0;
    }
    this.draining = false;
  }
}

export type DeliveryOutcome = { status: 'delivered' } | { status: 'dropped' } | { status: 'failed'; error: unknown };
