import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { firstValueFrom } from 'rxjs';
import { main } from '../../lib/cli/main.js';
import { createPluginHost, PluginError, type PluginHost } from '../../lib/index.js';
import { checkWasmModule } from '../../lib/runtimes/wasm/wasm-validator.js';
import { rejection, sandbox } from '../helpers/make-plugin.js';

/** The example plugin in the source tree; `npm run build` compiles its AssemblyScript. */
const PLUGIN_DIR = new URL('../../../plugins/text-metrics/', import.meta.url).pathname;
const WASM = join(PLUGIN_DIR, 'build', 'text-metrics.wasm');
const ID = 'text-metrics';

/** Reference CRC-32 (IEEE) of a string's UTF-8 bytes, as Node encodes them. */
function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Reference FNV-1a 32-bit, as 8 hex digits. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

// The AssemblyScript example plugin (plugins/text-metrics), built by `npm run build`, in a
// real host: its exports, its JSON handling, its event handler and its lifecycle hooks.
describe('e2e: the text-metrics example plugin (AssemblyScript → WebAssembly)', () => {
  let root: string;
  let host: PluginHost | undefined;
  let logs: { level: number; plugin?: string; msg: string }[];
  sandbox((dir) => (root = dir), () => host);

  before(function () {
    if (!existsSync(WASM)) throw new Error(`${WASM} is missing: run npm run build (it compiles the AssemblyScript example plugins).`);
  });

  beforeEach(() => {
    host = undefined;
    logs = [];
  });

  async function started(): Promise<PluginHost> {
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    host = await createPluginHost({ dataDir: join(root, 'data'), logger });
    await host.load(PLUGIN_DIR);
    await host.start(ID);
    return host;
  }

  const pluginLogs = () => logs.filter((l) => l.plugin === ID).map((l) => l.msg);

  it('passes the load-time checks: no start function, a memory maximum, logomesh imports only', async () => {
    const abi = checkWasmModule(new Uint8Array(await readFile(WASM)), { maxMemoryBytes: 16 * 2 ** 20, maxTableElements: 10_000 }, ID);
    expect([...abi.exposed].sort()).to.deep.equal(['count', 'crc32', 'fnv1a', 'measure']);
    expect(abi.handlers).to.deep.equal(['saved']);
    expect([...abi.hooks].sort()).to.deep.equal(['deserializeState', 'onStart', 'serializeState']);
    expect(abi.describe).to.equal(true);
    let out = '';
    const code = await main(['validate', PLUGIN_DIR], { stdout: (s) => (out += s), stderr: (s) => (out += s) });
    expect(code, out).to.equal(0);
  });

  it('starts (onStart logs), and hashes and counts text as the host encodes it', async () => {
    const h = await started();
    expect(h.status(ID)).to.include({ runtime: 'wasm', state: 'started' });
    expect(pluginLogs()).to.include('text-metrics ready, 0 documents measured so far');

    expect(await h.call(ID, 'crc32', '')).to.equal(0);
    expect(await h.call(ID, 'crc32', '123456789')).to.equal(0xcbf43926);
    expect(await h.call(ID, 'fnv1a', '')).to.equal('811c9dc5');
    expect(await h.call(ID, 'fnv1a', 'a')).to.equal('e40c292c');
    // Every JSON escape the host may send: quotes, backslashes, control characters,
    // non-ASCII text, a surrogate pair and a lone surrogate (U+FFFD, as Buffer encodes it).
    const tricky = 'say "hi" \\ to\n\tthe wörld ✓ 😀 \u0001\u001f \ud800 end/';
    expect(await h.call(ID, 'crc32', tricky)).to.equal(crc32(tricky));
    expect(await h.call(ID, 'fnv1a', tricky)).to.equal(fnv1a(tricky));

    const text = 'one two\n  three\n\nfour 😀';
    expect(await h.call(ID, 'measure', text)).to.deep.equal({
      bytes: Buffer.byteLength(text),
      chars: [...text].length,
      words: 5,
      lines: 4,
      crc32: crc32(text),
      fnv1a: fnv1a(text),
    });
    expect(await h.call(ID, 'measure', '')).to.deep.equal({ bytes: 0, chars: 0, words: 0, lines: 0, crc32: 0, fnv1a: '811c9dc5' });
    expect(await h.call(ID, 'measure', 'a\n')).to.include({ words: 1, lines: 1 });
    // A large argument grows the arena (and memory) within the declared maximum.
    const big = 'lorem ipsum '.repeat(100_000);
    expect(await h.call(ID, 'measure', big)).to.include({ bytes: big.length, words: 200_000, crc32: crc32(big) });
  });

  it('answers a wrong argument with a PluginError and keeps running', async () => {
    const h = await started();
    for (const args of [[42], [], ['a', 'b'], [null]]) {
      const error = await rejection(h.call(ID, 'crc32', ...args));
      expect(error, JSON.stringify(args)).to.be.instanceOf(PluginError);
      expect(error.remote).to.include({ name: 'TypeError', code: 'E_ARGUMENT', message: 'crc32(text) takes exactly one string' });
    }
    expect(await h.call(ID, 'crc32', 'still here')).to.equal(crc32('still here'));
  });

  it("measures every saved document into a 'measured' event, and warns about documents without text", async () => {
    const h = await started();
    const measured = firstValueFrom(h.plugin(ID).events$('measured'));
    const doc = { id: 'doc-7', text: 'Plugins that\ncannot hurt you' };
    await h.publish('document.saved', doc);
    const event = await measured;
    expect(event.data).to.deep.equal({ topic: 'document.saved', id: 'doc-7', bytes: 28, chars: 28, words: 5, lines: 2, crc32: crc32(doc.text) });
    expect(await h.call(ID, 'count')).to.equal(1);

    // Key order, escaped keys, nested values and no id: still found, still measured.
    const next = firstValueFrom(h.plugin(ID).events$('measured'));
    await h.publish('document.created', { meta: { text: 'not this', tags: ['a', { b: null }] }, text: 'this one' });
    expect((await next).data).to.deep.equal({ topic: 'document.created', bytes: 8, chars: 8, words: 2, lines: 1, crc32: crc32('this one') });

    await h.publish('document.saved', { id: 8 });
    expect(await h.call(ID, 'count')).to.equal(2);
    expect(pluginLogs()).to.include('text-metrics: "document.saved" has no data.text string; not measured');
  });

  it('keeps its count across a restart through serializeState / deserializeState', async () => {
    const h = await started();
    const measured = firstValueFrom(h.plugin(ID).events$('measured'));
    await h.publish('document.saved', { id: 1, text: 'x' });
    await measured;
    expect(await h.call(ID, 'count')).to.equal(1);
    await h.restart(ID);
    expect(h.status(ID).state).to.equal('started');
    expect(await h.call(ID, 'count')).to.equal(1);
  });
});
