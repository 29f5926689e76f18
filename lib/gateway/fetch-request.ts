import { InvalidArgumentError, ResourceLimitError } from '../errors.js';

/** What a plugin passes to `ctx.net.fetch` besides the URL. */
export interface FetchRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  bodyEncoding?: 'utf8' | 'base64';
  responseEncoding?: 'utf8' | 'base64';
}

/** What `ctx.net.fetch` returns: the final response after redirects, body decoded and as a string. */
export interface FetchResponse {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
  url: string;
  redirected: boolean;
}

/** A request after validation: upper-case method, lower-case header names, body as bytes. */
export interface PreparedRequest {
  method: string;
  headers: Record<string, string>;
  body?: Buffer;
  responseEncoding: 'utf8' | 'base64';
}

/** Methods a plugin may use. CONNECT and TRACE are left out: tunnels and request echoes. */
export const FETCH_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Largest request body a plugin may send, in bytes. */
export const MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024;

// Headers that describe the connection or the framing, which the guard owns: letting a
// plugin set them would allow request smuggling or reaching a host other than the one checked.
const FORBIDDEN_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'expect',
  'http2-settings',
]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, Latin-1 and tab; no CR, LF, NUL or other controls.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Validates a plugin's fetch options and normalises them. Throws `InvalidArgumentError` for a
 * bad method, header or encoding, `ResourceLimitError` ('networkRequest') for an oversized body.
 *
 * @example
 * prepareRequest('p', { method: 'post', headers: { 'X-Id': '1' }, body: 'hi' });
 * // { method: 'POST', headers: { 'x-id': '1' }, body: <Buffer 68 69>, responseEncoding: 'utf8' }
 */
export function prepareRequest(pluginId: string, init: FetchRequest = {}): PreparedRequest {
  const bad = (message: string) => new InvalidArgumentError(`net.fetch: ${message}`, { pluginId });
  if (init === null || typeof init !== 'object') throw bad('the options must be an object.');

  const method = init.method ?? 'GET';
  if (typeof method !== 'string' || !FETCH_METHODS.has(method.toUpperCase())) {
    throw bad(`method '${String(method)}' is not allowed; use one of ${[...FETCH_METHODS].join(', ')}.`);
  }

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(init.headers ?? {})) {
    const key = name.toLowerCase();
    if (!TOKEN.test(name)) throw bad(`header name ${JSON.stringify(name)} is not a valid HTTP token.`);
    if (typeof value !== 'string' || !FIELD_VALUE.test(value)) {
      throw bad(`header '${name}' has a value with control characters (CR, LF, NUL) or non-Latin-1 text.`);
    }
    if (FORBIDDEN_HEADERS.has(key) || key.startsWith('proxy-')) {
      throw bad(`header '${name}' is set by the host, not by plugins; remove it.`);
    }
    if (Object.hasOwn(headers, key)) throw bad(`header '${name}' is given twice (names are case-insensitive).`);
    headers[key] = value;
  }

  const responseEncoding = init.responseEncoding ?? 'utf8';
  const bodyEncoding = init.bodyEncoding ?? 'utf8';
  if (responseEncoding !== 'utf8' && responseEncoding !== 'base64') throw bad(`responseEncoding must be 'utf8' or 'base64'.`);
  if (bodyEncoding !== 'utf8' && bodyEncoding !== 'base64') throw bad(`bodyEncoding must be 'utf8' or 'base64'.`);

  let body: Buffer | undefined;
  if (init.body !== undefined) {
    if (typeof init.body !== 'string') throw bad('body must be a string (utf8 or base64).');
    const upper = method.toUpperCase();
    if (upper === 'GET' || upper === 'HEAD') throw bad(`a ${upper} request cannot have a body.`);
    // Checked on the string first so an oversized body is refused before it is copied.
    if (init.body.length > MAX_REQUEST_BODY_BYTES * 2) throw tooLarge(pluginId);
    if (bodyEncoding === 'base64' && !BASE64.test(init.body)) throw bad('body is not valid base64.');
    body = Buffer.from(init.body, bodyEncoding);
    if (body.length > MAX_REQUEST_BODY_BYTES) throw tooLarge(pluginId);
  }
  return { method: method.toUpperCase(), headers, body, responseEncoding };
}

function tooLarge(pluginId: string): ResourceLimitError {
  return new ResourceLimitError(
    pluginId,
    'networkRequest',
    `Plugin '${pluginId}' tried to send a request body over the limit of ${MAX_REQUEST_BODY_BYTES} bytes. Send it in parts.`,
  );
}
