/**
 * Topic patterns. Topics are dot-separated segments (`document.saved`); in a pattern `*`
 * matches exactly one segment and a trailing `**` matches zero or more segments.
 * Matching walks the segments once: linear in the topic length, no regular expressions.
 *
 * @example
 * topicMatches('document.*', 'document.saved');   // true
 * topicMatches('document.**', 'document');        // true
 * topicMatches('document.*', 'document.a.b');     // false
 */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**' && i === p.length - 1) return true;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

// Lowercase only, like manifest event scopes, so every publishable topic can be granted.
const SEGMENT = /^[a-z0-9_-]+$/;

/** True when `topic` is a concrete topic a plugin or the host may publish to. */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === 'string' && topic.length > 0 && topic.length <= 256 && topic.split('.').every((s) => SEGMENT.test(s));
}

/** True when `pattern` is a well-formed subscription pattern. */
export function isValidTopicPattern(pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 256) return false;
  const parts = pattern.split('.');
  return parts.every((s, i) => s === '*' || (s === '**' && i === parts.length - 1) || SEGMENT.test(s));
}
