/**
 * A small reader for the parts of a WebAssembly binary the host checks before anything is
 * compiled: types, imports, function types, tables, memories, exports and the start
 * function. It does not validate code; the engine does that when the worker compiles.
 *
 * @example
 * const info = readWasmSections(await readFile('plugin.wasm'));
 * info.memories[0]; // { min: 1, max: 16, shared: false, memory64: false }
 */

export type WasmExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag';

export interface WasmLimits {
  min: number;
  /** Absent when the module declares no maximum. */
  max?: number;
  shared: boolean;
  memory64: boolean;
}

export interface WasmFuncType {
  params: string[];
  results: string[];
}

export interface WasmImport {
  module: string;
  name: string;
  kind: WasmExternKind;
  /** Type index, for a function import. */
  type?: number;
  /** Limits, for a table or memory import. */
  limits?: WasmLimits;
}

export interface WasmExport {
  name: string;
  kind: WasmExternKind;
  index: number;
}

export interface WasmModuleInfo {
  types: WasmFuncType[];
  imports: WasmImport[];
  /** Type index of every function, imported ones first (the function index space). */
  functions: number[];
  tables: WasmLimits[];
  memories: WasmLimits[];
  exports: WasmExport[];
  start?: number;
}

/** Thrown for bytes that are not a WebAssembly binary this reader understands. */
export class WasmFormatError extends Error {
  override name = 'WasmFormatError';
}

const VALTYPES: Record<number, string> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
};
const KINDS: WasmExternKind[] = ['function', 'table', 'memory', 'global', 'tag'];

class Reader {
  offset = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly end = bytes.length,
  ) {}

  get done(): boolean {
    return this.offset >= this.end;
  }

  u8(): number {
    if (this.offset >= this.end) throw new WasmFormatError(`unexpected end at byte ${this.offset}`);
    return this.bytes[this.offset++];
  }

  /** Unsigned LEB128 of at most `bits` bits, as a number (exact up to 2^53). */
  uleb(bits = 32): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < Math.ceil(bits / 7); i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (result >= 2 ** bits) throw new WasmFormatError(`integer too large at byte ${this.offset}`);
        return result;
      }
      scale *= 128;
    }
    throw new WasmFormatError(`integer too long at byte ${this.offset}`);
  }

  skip(n: number): void {
    if (n > this.end - this.offset) throw new WasmFormatError(`unexpected end at byte ${this.offset}`);
    this.offset += n;
  }

  skipRest(): void {
    this.offset = this.end;
  }

  name(): string {
    const length = this.uleb();
    const start = this.offset;
    this.skip(length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new WasmFormatError(`name at byte ${start} is not UTF-8`);
    }
  }

  valtype(): string {
    const code = this.u8();
    const type = VALTYPES[code];
    if (!type) throw new WasmFormatError(`value type 0x${code.toString(16)} at byte ${this.offset - 1} is not supported`);
    return type;
  }

  limits(): WasmLimits {
    const flags = this.u8();
    if (flags > 0x07) throw new WasmFormatError(`limits flags 0x${flags.toString(16)} at byte ${this.offset - 1} are not supported`);
    const memory64 = (flags & 0x04) !== 0;
    const bits = memory64 ? 64 : 32;
    const min = this.uleb(bits);
    const max = flags & 0x01 ? this.uleb(bits) : undefined;
    return { min, max, shared: (flags & 0x02) !== 0, memory64 };
  }

  vec<T>(item: () => T): T[] {
    const count = this.uleb();
    // Each item takes at least one byte: a count beyond what is left is a lie, not a loop.
    if (count > this.end - this.offset) throw new WasmFormatError(`vector of ${count} items at byte ${this.offset} overruns its section`);
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(item());
    return items;
  }
}

/**
 * Reads the declarations of a WebAssembly binary (version 1). Throws {@link WasmFormatError}
 * for anything it cannot read, including features it does not know (so they are refused,
 * not skipped).
 */
export function readWasmSections(bytes: Uint8Array): WasmModuleInfo {
  const header = new Reader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const b of magic) if (header.u8() !== b) throw new WasmFormatError('not a WebAssembly binary (version 1)');
  const info: WasmModuleInfo = { types: [], imports: [], functions: [], tables: [], memories: [], exports: [] };
  let offset = header.offset;
  while (offset < bytes.length) {
    const head = new Reader(bytes);
    head.offset = offset;
    const id = head.u8();
    const size = head.uleb();
    const start = head.offset;
    if (size > bytes.length - start) throw new WasmFormatError(`section ${id} at byte ${offset} overruns the file`);
    const r = new Reader(bytes, start + size);
    r.offset = start;
    readSection(id, r, info);
    if (id !== 0 && !r.done) throw new WasmFormatError(`section ${id} at byte ${offset} has trailing bytes`);
    offset = start + size;
  }
  return info;
}

function readSection(id: number, r: Reader, info: WasmModuleInfo): void {
  switch (id) {
    case 1:
      info.types = r.vec(() => {
        const form = r.u8();
        if (form !== 0x60) throw new WasmFormatError(`type form 0x${form.toString(16)} is not supported`);
        return { params: r.vec(() => r.valtype()), results: r.vec(() => r.valtype()) };
      });
      return;
    case 2:
      info.imports = r.vec(() => {
        const module = r.name();
        const name = r.name();
        const kind = KINDS[r.u8()];
        const entry: WasmImport = { module, name, kind };
        if (kind === 'function') {
          entry.type = r.uleb();
          info.functions.push(entry.type);
        } else if (kind === 'table') {
          r.valtype();
          entry.limits = r.limits();
        } else if (kind === 'memory') entry.limits = r.limits();
        else if (kind === 'global') {
          r.valtype();
          r.u8();
        } else if (kind === 'tag') {
          r.u8();
          r.uleb();
        } else throw new WasmFormatError(`unknown import kind in import ${module}.${name}`);
        return entry;
      });
      return;
    case 3:
      info.functions.push(...r.vec(() => r.uleb()));
      return;
    case 4:
      info.tables = r.vec(() => {
        const type = r.u8();
        if (!VALTYPES[type] || !['funcref', 'externref'].includes(VALTYPES[type])) {
          throw new WasmFormatError(`table type 0x${type.toString(16)} is not supported`);
        }
        return r.limits();
      });
      return;
    case 5:
      info.memories = r.vec(() => r.limits());
      return;
    case 7:
      info.exports = r.vec(() => {
        const name = r.name();
        const kind = KINDS[r.u8()];
        if (!kind) throw new WasmFormatError(`unknown export kind of export ${name}`);
        return { name, kind, index: r.uleb() };
      });
      return;
    case 8:
      info.start = r.uleb();
      return;
    default:
      // Custom (0), global, element, code, data, data count and tag sections declare no
      // imports, limits or exports: the engine validates them when it compiles.
      if (id > 13) throw new WasmFormatError(`unknown section id ${id}`);
      r.skipRest();
  }
}
