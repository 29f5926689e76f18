// Messages between run.ts and its child processes (idle-child.ts, timing-child.ts), over the IPC channel.
import type { BenchmarkResult } from './benchmark-result.js';
import type { Fleet } from './fleet.js';
import type { CpuSample } from './idle-cpu.js';
import type { RssSample } from './idle-memory.js';

/** Child → parent: the RSS reading, taken as soon as the memory fleet is loaded. */
export interface MemoryMessage {
  type: 'memory';
  sample: RssSample;
}

/** Child → parent: the full fleet is loaded and settled; waiting for `window`. */
export interface ReadyMessage {
  type: 'ready';
}

/** Child → parent: the CPU reading of every idle window, in order. */
export interface CpuMessage {
  type: 'cpu';
  samples: CpuSample[];
}

/** Child → parent: the child failed; it exits after sending this. */
export interface ErrorMessage {
  type: 'error';
  message: string;
}

export type IdleChildMessage = MemoryMessage | ReadyMessage | CpuMessage | ErrorMessage;

/** Parent → child: start `count` back-to-back idle windows now, each `ms` milliseconds long. */
export interface WindowMessage {
  type: 'window';
  ms: number;
  count: number;
}

/** How the parent starts a child: `node idle-child.js <kind> <tmp> <memoryN> <cpuN>`. */
export interface IdleChildArgs {
  kind: Fleet['kind'];
  tmp: string;
  /** Sandboxes added for the RSS reading (after one warm-up sandbox). */
  memoryN: number;
  /** Total sandboxes during the CPU window. */
  cpuN: number;
}

/** Timing child → parent: call latency and load time, measured with every thread pinned to one CPU. */
export interface TimingMessage {
  type: 'timing';
  results: BenchmarkResult[];
}

/** Timing child → parent: it failed; it exits after sending this. */
export type TimingChildMessage = TimingMessage | ErrorMessage;
