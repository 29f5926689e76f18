// text-metrics: a LogoMesh WebAssembly plugin written in AssemblyScript.
//
// The ABI (docs/plugins/RUNTIME_SPECIFICATIONS.md): the host writes a call's input JSON into
// memory it got from `alloc`, calls `lm_<name>(ptr, len)` and reads the JSON text at the
// returned `ptr << 32 | len` before it calls into the module again. So all memory a call
// uses comes from an arena that `alloc` (the start of every invocation) resets: nothing is
// freed one by one, nothing leaks between calls, and `dealloc` is not needed. The arena is
// our own (below), not AssemblyScript's runtime: its globals would be set by a start
// function, which the host refuses. Only primitive globals survive a call; no managed
// objects (strings, arrays) are created at run time, so the runtime stays unused.
//
//   crc32(text)   -> CRC-32 (IEEE 802.3) of the text's UTF-8 bytes, a number
//   fnv1a(text)   -> FNV-1a 32-bit hash of the same bytes, 8 hex digits
//   measure(text) -> { bytes, chars, words, lines, crc32, fnv1a }
//   count()       -> documents measured by the event handler so far
//   on 'document.*' (handler `saved`): emits 'measured' with the document's metrics
//   hooks: onStart (logs), serializeState / deserializeState (keep `count` across restarts)
import * as json from './json';

// @ts-ignore: decorator
@external('logomesh', 'log')
declare function hostLog(level: i32, ptr: usize, len: usize): void;
// @ts-ignore: decorator
@external('logomesh', 'emit')
declare function hostEmit(topicPtr: usize, topicLen: usize, dataPtr: usize, dataLen: usize): void;

const INFO: i32 = 1;
const WARN: i32 = 2;

/** Documents the `saved` handler measured; carried across restarts by the state hooks. */
let measured: u32 = 0;

// ---- the ABI ------------------------------------------------------------------------------

/** The arena: from the end of static data to `arenaTop`; lazily set (no start function). */
let arenaBase: usize = 0;
let arenaTop: usize = 0;

/** `n` bytes from the arena, growing memory as needed (a trap past the declared maximum). */
function reserve(n: usize): usize {
  if (n > 0x7fff0000) unreachable();
  if (arenaBase == 0) arenaBase = arenaTop = (__heap_base + 15) & ~(<usize>15);
  const p = arenaTop;
  const top = (p + n + 7) & ~(<usize>7);
  const have = <usize>memory.size() << 16;
  if (top > have && memory.grow(<i32>((top - have + 0xffff) >>> 16)) < 0) unreachable();
  arenaTop = top;
  return p;
}

/** Memory for one invocation's input; also the start of a new invocation (see above). */
export function alloc(len: usize): usize {
  arenaTop = arenaBase; // 0 before the first reservation, which then sets both
  return reserve(len);
}

function pack(ptr: usize, len: usize): u64 {
  return (<u64>ptr << 32) | <u64>len;
}

/** Starts a result buffer of `capacity` bytes. */
function output(capacity: usize): void {
  json.startOutput(reserve(capacity));
}

function result(): u64 {
  return pack(json.outputStart(), json.outputLength());
}

/** Nothing to return (the host sees `undefined`). */
const NONE: u64 = 0;

export function lm_describe(): u64 {
  output(64);
  json.ascii('{"handlers":[{"pattern":"document.*","method":"saved"}]}');
  return result();
}

// ---- methods ------------------------------------------------------------------------------

/** Decodes the single string argument of `["…"]` into `text`; false if the input is anything else. */
let text: usize = 0;
let textLen: usize = 0;

function stringArgument(ptr: usize, len: usize): bool {
  json.begin(ptr, len);
  if (!json.expect(0x5b)) return false;
  text = reserve(len);
  const n = json.readString(text);
  if (n < 0 || !json.expect(0x5d)) return false;
  textLen = <usize>n;
  return true;
}

/** `{"error": …}`: the host turns it into a PluginError with this name, message and code. */
function badArgument(method: string): u64 {
  output(160);
  json.ascii('{"error":{"name":"TypeError","code":"E_ARGUMENT","message":"');
  json.ascii(method);
  json.ascii('(text) takes exactly one string"}}');
  return result();
}

export function lm_crc32(ptr: usize, len: usize): u64 {
  if (!stringArgument(ptr, len)) return badArgument('crc32');
  output(16);
  json.u32dec(crc32(text, textLen));
  return result();
}

export function lm_fnv1a(ptr: usize, len: usize): u64 {
  if (!stringArgument(ptr, len)) return badArgument('fnv1a');
  output(16);
  json.u32hex(fnv1a(text, textLen));
  return result();
}

export function lm_measure(ptr: usize, len: usize): u64 {
  if (!stringArgument(ptr, len)) return badArgument('measure');
  output(160);
  json.byte(0x7b);
  writeMetrics(text, textLen);
  json.ascii(',"fnv1a":');
  json.u32hex(fnv1a(text, textLen));
  json.byte(0x7d);
  return result();
}

export function lm_count(ptr: usize, len: usize): u64 {
  output(16);
  json.u32dec(measured);
  return result();
}

// ---- the event handler --------------------------------------------------------------------

/**
 * On 'document.*' (`{"topic", "data", "source"}`): when `data.text` is a string, emits
 * 'measured' with `{topic, id?, bytes, chars, words, lines, crc32}` (`id` is `data.id`
 * copied as it came) and counts the document; otherwise logs a warning.
 */
export function lm_on_saved(ptr: usize, len: usize): u64 {
  const scratch = reserve(len);
  // The topic's JSON text, copied as it is.
  json.begin(ptr, len);
  if (!json.findKey('topic', scratch)) return NONE;
  const topicStart = json.pos;
  if (!json.skipValue()) return NONE;
  const topicEnd = json.pos;

  json.begin(ptr, len);
  if (!json.findKey('data', scratch) || json.peek() != 0x7b) return warnNoText(topicStart, topicEnd);
  const dataStart = json.pos;
  text = reserve(len);
  const n = json.findKey('text', scratch) ? json.readString(text) : -1;
  if (n < 0) return warnNoText(topicStart, topicEnd);
  textLen = <usize>n;
  json.seek(dataStart);
  let idStart: usize = 0;
  let idEnd: usize = 0;
  if (json.findKey('id', scratch)) {
    idStart = json.pos;
    if (json.skipValue()) idEnd = json.pos;
  }

  output(len + 256);
  json.ascii('{"topic":');
  json.raw(topicStart, topicEnd - topicStart);
  if (idEnd > idStart) {
    json.ascii(',"id":');
    json.raw(idStart, idEnd - idStart);
  }
  json.byte(0x2c);
  writeMetrics(text, textLen);
  json.byte(0x7d);
  const data = json.outputStart();
  const dataLen = json.outputLength();
  output(8);
  json.ascii('measured');
  hostEmit(json.outputStart(), json.outputLength(), data, dataLen);
  measured++;
  return NONE;
}

function warnNoText(topicStart: usize, topicEnd: usize): u64 {
  output(topicEnd - topicStart + 64);
  json.ascii('text-metrics: ');
  json.raw(topicStart, topicEnd - topicStart);
  json.ascii(' has no data.text string; not measured');
  hostLog(WARN, json.outputStart(), json.outputLength());
  return NONE;
}

// ---- lifecycle hooks ----------------------------------------------------------------------

export function lm_hook_onStart(ptr: usize, len: usize): u64 {
  output(64);
  json.ascii('text-metrics ready, ');
  json.u32dec(measured);
  json.ascii(' documents measured so far');
  hostLog(INFO, json.outputStart(), json.outputLength());
  return NONE;
}

export function lm_hook_serializeState(ptr: usize, len: usize): u64 {
  output(32);
  json.ascii('{"measured":');
  json.u32dec(measured);
  json.byte(0x7d);
  return result();
}

/** Takes back what serializeState returned: `{"measured": n}`; anything else leaves the count alone. */
export function lm_hook_deserializeState(ptr: usize, len: usize): u64 {
  const scratch = reserve(len);
  json.begin(ptr, len);
  if (json.peek() == 0x7b && json.findKey('measured', scratch)) {
    const n = json.readU32();
    if (n >= 0) measured = <u32>n;
  }
  return NONE;
}

// ---- metrics ------------------------------------------------------------------------------

/** `"bytes":…,"chars":…,"words":…,"lines":…,"crc32":…` (no braces). */
function writeMetrics(p: usize, n: usize): void {
  let chars: u32 = 0;
  let words: u32 = 0;
  let newlines: u32 = 0;
  let inWord = false;
  for (let i: usize = 0; i < n; i++) {
    const c = load<u8>(p + i);
    if ((c & 0xc0) != 0x80) chars++; // not a UTF-8 continuation byte: a new code point
    const space = c == 0x20 || (c >= 0x09 && c <= 0x0d);
    if (c == 0x0a) newlines++;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      words++;
    }
  }
  // Lines as an editor counts them: a last line without a newline still counts.
  const lines = n == 0 ? 0 : newlines + (load<u8>(p + n - 1) == 0x0a ? 0 : 1);
  json.ascii('"bytes":');
  json.u32dec(<u32>n);
  json.ascii(',"chars":');
  json.u32dec(chars);
  json.ascii(',"words":');
  json.u32dec(words);
  json.ascii(',"lines":');
  json.u32dec(lines);
  json.ascii(',"crc32":');
  json.u32dec(crc32(p, n));
}

/** The CRC-32 table, in static memory (below the arena), filled on first use. */
const CRC_TABLE = memory.data(256 * 4, 4);
let crcReady = false;

function crc32(p: usize, n: usize): u32 {
  if (!crcReady) {
    for (let i: u32 = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      store<u32>(CRC_TABLE + (<usize>i << 2), c);
    }
    crcReady = true;
  }
  let crc: u32 = 0xffffffff;
  for (let i: usize = 0; i < n; i++) {
    crc = load<u32>(CRC_TABLE + (<usize>((crc ^ load<u8>(p + i)) & 0xff) << 2)) ^ (crc >>> 8);
  }
  return crc ^ 0xffffffff;
}

function fnv1a(p: usize, n: usize): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i: usize = 0; i < n; i++) h = (h ^ load<u8>(p + i)) * 0x01000193;
  return h;
}
