// The README's host example, runnable: `npm start`.
import { createPluginHost } from '../lib/index.js';

const host = await createPluginHost({ pluginDirs: ['./plugins'], dataDir: './.logomesh' });
host.events$.subscribe((e) => e.type === 'plugin.started' && console.log(`started ${e.pluginId}@${e.version}`));
const report = await host.loadAll();
for (const failed of report.plugins.filter((p) => p.error)) console.log(`failed ${failed.id}: ${failed.error!.message}`);

console.log('upper("hi") →', await host.call('text-processor', 'upper', 'hi'));
host.plugin('text-processor').events$('indexed').subscribe((e) => console.log('indexed →', JSON.stringify(e.data)));
// text-metrics is WebAssembly (AssemblyScript, compiled by `npm run build`): same calls, same events.
host.plugin('text-metrics').events$('measured').subscribe((e) => console.log('measured →', JSON.stringify(e.data)));
console.log('publish →', await host.publish('document.saved', { id: 1, text: 'plugins that cannot hurt you' }));
console.log('measure("hello wasm") →', JSON.stringify(await host.call('text-metrics', 'measure', 'hello wasm')));
console.log('headline →', JSON.stringify(await host.call('word-stats', 'headline', 'Isolated by default')));
// data-visualizer is Python (Pyodide, sealed in its own worker): the first start of a process boots
// Pyodide and keeps a snapshot in .logomesh/cache, later ones load from it.
console.log('summary([3, 1, 4, 1, 5]) →', JSON.stringify(await host.call('data-visualizer', 'summary', [3, 1, 4, 1, 5])));

console.table(host.list().map((s) => ({ id: s.id, version: s.version, state: s.state, 'load ms': s.loadTimeMs?.toFixed(1), 'heap MB': (s.memory.current / 2 ** 20).toFixed(2) })));
await host.close();
