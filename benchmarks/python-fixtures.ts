import { copyFixture } from './plugin-copies.js';

/**
 * A copy of the `python-upper` fixture plugin (benchmarks/fixtures/python-upper: one exposed
 * method, `upper(text)`) under id `id` in `<into>/<id>`, ready for `host.load(dir)`.
 *
 * @example
 * await host.load(await pythonPluginCopy(join(tmp, 'plugins'), 'py-bench'));
 */
export function pythonPluginCopy(into: string, id: string): Promise<string> {
  return copyFixture('python-upper', into, id);
}
