/**
 * A rate token bucket (bytes, requests, any unit) that may go into debt: `take(n)` always charges all `n` bytes at
 * once (a socket chunk can be larger than the burst) and resolves when the balance is back
 * to zero, so the caller holds the chunk until it is paid for. Concurrent callers share the
 * debt, so together they get the configured rate.
 *
 * @example
 * const bucket = TokenBucket.fromKbps(80); // 10 000 bytes per second
 * await bucket.take(chunk.length, signal);
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    readonly bytesPerSecond: number,
    readonly burstBytes = bytesPerSecond / 4,
  ) {
    this.tokens = burstBytes;
  }

  /** A bucket for a limit in kilobits per second (1 kbit = 1000 bits), or none for 0/undefined. */
  static fromKbps(kbps: number | undefined): TokenBucket | undefined {
    return kbps && kbps > 0 ? new TokenBucket((kbps * 1000) / 8) : undefined;
  }

  /** Charges `n` bytes; resolves once they are paid for, or rejects with the signal's reason. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
    this.tokens -= n;
    if (this.tokens >= 0) return Promise.resolve();
    const waitMs = Math.ceil((-this.tokens / this.bytesPerSecond) * 1000);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, waitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
