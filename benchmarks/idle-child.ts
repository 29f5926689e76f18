// Entry of the child process the idle benchmarks run in: started by idle-runner.ts with
// --no-node-snapshot --expose-gc, so gc() is available and nothing else shares the process.
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IdleChildArgs, IdleChildMessage, WindowMessage } from './child-protocol.js';
import { pluginFleet, rawFleet } from './fleet.js';
import { measureIdleCpu } from './idle-cpu.js';
import { measureRss } from './idle-memory.js';
import { settle } from './settle.js';

const send = (message: IdleChildMessage) =>
  new Promise<void>((resolve, reject) => process.send!(message, (e: Error | null) => (e ? reject(e) : resolve())));

const nextWindow = () =>
  new Promise<WindowMessage>((resolve) => {
    const onMessage = (m: WindowMessage) => {
      if (m?.type !== 'window') return;
      process.off('message', onMessage);
      resolve(m);
    };
    process.on('message', onMessage);
  });

async function main(args: IdleChildArgs): Promise<void> {
  await mkdir(args.tmp, { recursive: true });
  const fleet = args.kind === 'raw' ? rawFleet() : await pluginFleet(args.tmp, args.cpuN, args.kind === 'ours');
  // One sandbox before the first reading, so lazily initialised code (ours and isolated-vm's) is not counted per plugin.
  await fleet.add(1);
  await send({ type: 'memory', sample: await measureRss(fleet, args.memoryN) });
  const window = nextWindow();
  await fleet.add(args.cpuN - fleet.size);
  const loaded = Date.now();
  await settle();
  await sleep(1000);
  await send({ type: 'ready' });
  const { ms, count } = await window;
  await send({ type: 'cpu', samples: await measureIdleCpu(fleet, loaded, count, ms) });
  await fleet.close();
}

const [kind, tmp, memoryN, cpuN] = process.argv.slice(2);
main({ kind: kind as IdleChildArgs['kind'], tmp, memoryN: Number(memoryN), cpuN: Number(cpuN) })
  .catch(async (e: unknown) => {
    process.exitCode = 1;
    await send({ type: 'error', message: (e as Error)?.stack ?? String(e) }).catch(() => undefined);
  })
  .finally(() => process.disconnect());
