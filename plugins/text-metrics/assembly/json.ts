// Just enough JSON for the LogoMesh ABI, on UTF-8 bytes in linear memory: a reader that
// skips any value, finds an object's key and decodes a string (every escape, including
// \uXXXX surrogate pairs), and a writer for the few shapes this plugin returns. No managed
// objects: everything lives in buffers from the per-call arena (see index.ts).

const QUOTE: u8 = 0x22; // "
const BACKSLASH: u8 = 0x5c;
/** The host refuses results nested deeper than this; inputs are no deeper either. */
const MAX_DEPTH: i32 = 128;

// ---- reader -------------------------------------------------------------------------------

/** The reader's cursor and the end of its input: one JSON text is read at a time. */
export let pos: usize = 0;
let end: usize = 0;

/** Starts reading the JSON text at [ptr, ptr + len). */
export function begin(ptr: usize, len: usize): void {
  pos = ptr;
  end = ptr + len;
}

/** Moves the cursor back to `p` (a position this reader returned earlier). */
export function seek(p: usize): void {
  pos = p;
}

/** Skips whitespace and returns the next byte (not consumed), or -1 at the end. */
export function peek(): i32 {
  while (pos < end) {
    const c = load<u8>(pos);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return c;
    pos++;
  }
  return -1;
}

/** Consumes `c` (after whitespace) or returns false. */
export function expect(c: i32): bool {
  if (peek() != c) return false;
  pos++;
  return true;
}

/** Skips one value of any kind; false when the text is not JSON. */
export function skipValue(): bool {
  return skip(0);
}

function skip(depth: i32): bool {
  const c = peek();
  if (c < 0) return false;
  if (c == QUOTE) return skipString();
  if (c == 0x7b || c == 0x5b) {
    // { or [
    if (depth >= MAX_DEPTH) return false;
    const object = c == 0x7b;
    const close = object ? 0x7d : 0x5d;
    pos++;
    if (peek() == close) {
      pos++;
      return true;
    }
    while (true) {
      if (object && !(peek() == QUOTE && skipString() && expect(0x3a))) return false;
      if (!skip(depth + 1)) return false;
      const d = peek();
      pos++;
      if (d == 0x2c) continue; // ,
      return d == close;
    }
  }
  // A number or true/false/null: the host sends valid JSON, so its characters are enough.
  const start = pos;
  while (pos < end) {
    const d = load<u8>(pos);
    const token = (d >= 0x30 && d <= 0x39) || (d >= 0x61 && d <= 0x7a) || d == 0x2d || d == 0x2b || d == 0x2e || d == 0x45;
    if (!token) break;
    pos++;
  }
  return pos > start;
}

function skipString(): bool {
  pos++; // the opening quote
  while (pos < end) {
    const c = load<u8>(pos++);
    if (c == QUOTE) return true;
    if (c == BACKSLASH) {
      if (pos >= end) return false;
      pos++;
    } else if (c < 0x20) return false;
  }
  return false;
}

/**
 * Decodes the string at the cursor into UTF-8 at `out`, which must have room for as many
 * bytes as the string's JSON text (decoding never makes it longer). Returns the decoded
 * length, or -1 when the cursor is not at a well-formed string. A lone surrogate becomes
 * U+FFFD, as TextEncoder does on the host.
 */
export function readString(out: usize): isize {
  if (peek() != QUOTE) return -1;
  pos++;
  let o = out;
  while (pos < end) {
    const c = load<u8>(pos++);
    if (c == QUOTE) return <isize>(o - out);
    if (c < 0x20) return -1;
    if (c != BACKSLASH) {
      store<u8>(o++, c);
      continue;
    }
    if (pos >= end) return -1;
    const e = load<u8>(pos++);
    let b: i32 = -1;
    if (e == QUOTE || e == BACKSLASH || e == 0x2f) b = e;
    else if (e == 0x62) b = 0x08; // \b
    else if (e == 0x66) b = 0x0c; // \f
    else if (e == 0x6e) b = 0x0a; // \n
    else if (e == 0x72) b = 0x0d; // \r
    else if (e == 0x74) b = 0x09; // \t
    if (b >= 0) {
      store<u8>(o++, <u8>b);
      continue;
    }
    if (e != 0x75) return -1; // \u
    let cp = hex4();
    if (cp < 0) return -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      // A high surrogate: combine with a following \uDC00-\uDFFF, else it stands alone.
      if (pos + 6 <= end && load<u8>(pos) == BACKSLASH && load<u8>(pos + 1) == 0x75) {
        const save = pos;
        pos += 2;
        const low = hex4();
        if (low >= 0xdc00 && low <= 0xdfff) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        else {
          pos = save;
          cp = 0xfffd;
        }
      } else cp = 0xfffd;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) cp = 0xfffd;
    o = utf8(o, cp);
  }
  return -1;
}

function hex4(): i32 {
  if (pos + 4 > end) return -1;
  let v: i32 = 0;
  for (let i = 0; i < 4; i++) {
    const c = <i32>load<u8>(pos++);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

function utf8(o: usize, cp: i32): usize {
  if (cp < 0x80) store<u8>(o++, <u8>cp);
  else if (cp < 0x800) {
    store<u8>(o++, <u8>(0xc0 | (cp >> 6)));
    store<u8>(o++, <u8>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    store<u8>(o++, <u8>(0xe0 | (cp >> 12)));
    store<u8>(o++, <u8>(0x80 | ((cp >> 6) & 0x3f)));
    store<u8>(o++, <u8>(0x80 | (cp & 0x3f)));
  } else {
    store<u8>(o++, <u8>(0xf0 | (cp >> 18)));
    store<u8>(o++, <u8>(0x80 | ((cp >> 12) & 0x3f)));
    store<u8>(o++, <u8>(0x80 | ((cp >> 6) & 0x3f)));
    store<u8>(o++, <u8>(0x80 | (cp & 0x3f)));
  }
  return o;
}

/**
 * With the cursor at an object, moves it to the value of member `key` (compared after
 * decoding, so "\u0074ext" is "text") and returns true; false when the object has no such
 * member or is not well-formed. `scratch` needs room for the longest key's JSON text.
 */
export function findKey(key: string, scratch: usize): bool {
  if (!expect(0x7b)) return false;
  if (peek() == 0x7d) return false;
  while (true) {
    const n = readString(scratch);
    if (n < 0 || !expect(0x3a)) return false;
    if (equalsAscii(scratch, n, key)) {
      peek();
      return true;
    }
    if (!skipValue()) return false;
    if (!expect(0x2c)) return false;
  }
}

function equalsAscii(ptr: usize, len: isize, s: string): bool {
  if (len != s.length) return false;
  for (let i = 0; i < s.length; i++) if (<i32>load<u8>(ptr + i) != s.charCodeAt(i)) return false;
  return true;
}

/** The cursor's value as a non-negative integer below 2^32, or -1 (fractions, exponents, too big). */
export function readU32(): i64 {
  if (peek() < 0x30 || peek() > 0x39) return -1;
  let v: i64 = 0;
  while (pos < end) {
    const c = load<u8>(pos);
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    if (v > 0xffffffff) return -1;
    pos++;
  }
  if (pos < end) {
    const c = load<u8>(pos);
    if (c == 0x2e || c == 0x65 || c == 0x45) return -1;
  }
  return v;
}

// ---- writer -------------------------------------------------------------------------------

let out: usize = 0;
let outStart: usize = 0;

/** Starts writing at `ptr` (a buffer the caller sized). */
export function startOutput(ptr: usize): void {
  out = outStart = ptr;
}

/** Bytes written since {@link startOutput}. */
export function outputLength(): usize {
  return out - outStart;
}

export function outputStart(): usize {
  return outStart;
}

export function byte(c: i32): void {
  store<u8>(out++, <u8>c);
}

/** Writes an ASCII string literal as it is (it is JSON syntax or a known-safe text). */
export function ascii(s: string): void {
  for (let i = 0; i < s.length; i++) store<u8>(out++, <u8>s.charCodeAt(i));
}

/** Copies bytes, e.g. a value's JSON text taken from the input. */
export function raw(ptr: usize, len: usize): void {
  memory.copy(out, ptr, len);
  out += len;
}

export function u32dec(n: u32): void {
  if (n == 0) {
    byte(0x30);
    return;
  }
  let digits: usize = 0;
  for (let m = n; m > 0; m /= 10) digits++;
  out += digits;
  for (let p = out; n > 0; n /= 10) store<u8>(--p, <u8>(0x30 + (n % 10)));
}

/** Eight lowercase hex digits, as a JSON string. */
export function u32hex(n: u32): void {
  byte(QUOTE);
  for (let shift = 28; shift >= 0; shift -= 4) {
    const d = (n >> shift) & 0xf;
    byte(d < 10 ? 0x30 + d : 0x57 + d);
  }
  byte(QUOTE);
}

/** UTF-8 bytes as a JSON string; needs up to 6 bytes per input byte, plus 2. */
export function jsonString(ptr: usize, len: usize): void {
  byte(QUOTE);
  for (let i: usize = 0; i < len; i++) {
    const c = load<u8>(ptr + i);
    if (c == QUOTE || c == BACKSLASH) {
      byte(BACKSLASH);
      byte(c);
    } else if (c == 0x0a) ascii('\\n');
    else if (c < 0x20) {
      ascii('\\u00');
      byte(0x30 + (c >> 4));
      const d = c & 0xf;
      byte(d < 10 ? 0x30 + d : 0x57 + d);
    } else byte(c);
  }
  byte(QUOTE);
}
