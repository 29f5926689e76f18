/** One thing to time: `run()` is awaited once per sample. */
export interface Variant {
  name: string;
  run(): Promise<unknown>;
}

/**
 * Warm-up calls per variant for call-latency benchmarks, so they measure the steady state of a
 * long-running host: V8 tiers a call path up only after a few thousand calls (the Wasm call took
 * 25 µs p50 after 300 warm-up calls, 19 µs after 2000 and 11–14 µs from about 3000 on, the raw
 * baseline 10 → 8.5 µs). Every variant gets the same warm-up.
 */
export const STEADY_WARMUP = 5000;

export interface InterleaveOptions {
  /** Untimed runs of each variant before sampling. */
  warmup: number;
  /** Rounds; each runs one batch of every variant, starting with a different one each round. */
  rounds: number;
  /** Timed runs per variant per round. */
  batch: number;
}

/**
 * Times variants in alternating batches, so each sees the same machine mode: cross-thread
 * timings on a small VM swing 2–5× between minutes, and sequential blocks would turn that
 * swing into a false difference. Samples are nanoseconds, per variant name.
 *
 * @example
 * const ns = await interleave([{ name: 'a', run: () => f() }], { warmup: 100, rounds: 10, batch: 100 });
 */
export async function interleave(variants: Variant[], options: InterleaveOptions): Promise<Map<string, number[]>> {
  for (const v of variants) for (let i = 0; i < options.warmup; i++) await v.run();
  const samples = new Map(variants.map((v) => [v.name, [] as number[]]));
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length];
      const into = samples.get(v.name)!;
      for (let i = 0; i < options.batch; i++) {
        const t0 = process.hrtime.bigint();
        await v.run();
        into.push(Number(process.hrtime.bigint() - t0));
      }
    }
  }
  return samples;
}
