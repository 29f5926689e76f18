// Entry of the child process run.ts starts under `taskset -c <cpu>`, so the hosts, their
// isolates and isolated-vm's pool threads share one CPU. Cross-thread hand-offs then never
// wait for another core to wake, and the variants compared (ours and raw, monitoring on and
// off) are timed in the same (fast) mode. `timing-child.js <tmp> wasm` runs the Wasm call
// latencies instead (their piscina and raw worker threads share the CPU the same way), and
// `timing-child.js <tmp> python` the Python call latency.
import { join } from 'node:path';
import { callLatency } from './call-latency.js';
import type { TimingChildMessage } from './child-protocol.js';
import { loadTime } from './load-time.js';
import { monitoringCallLatency } from './monitoring-overhead.js';
import { pythonCallLatency } from './python-call-latency.js';
import { wasmCallLatency } from './wasm-call-latency.js';

const send = (message: TimingChildMessage) =>
  new Promise<void>((resolve, reject) => process.send!(message, (e: Error | null) => (e ? reject(e) : resolve())));

async function main(tmp: string, suite: string): Promise<void> {
  const results =
    suite === 'wasm'
      ? await wasmCallLatency(join(tmp, 'wasm-call'))
      : suite === 'python'
        ? [await pythonCallLatency(join(tmp, 'python-call'))]
        : [await callLatency(join(tmp, 'call')), await loadTime(join(tmp, 'load')), await monitoringCallLatency(join(tmp, 'monitoring'))];
  await send({ type: 'timing', results });
}

main(process.argv[2], process.argv[3] ?? 'js')
  .catch(async (e: unknown) => {
    process.exitCode = 1;
    await send({ type: 'error', message: (e as Error)?.stack ?? String(e) }).catch(() => undefined);
  })
  .finally(() => process.disconnect());
