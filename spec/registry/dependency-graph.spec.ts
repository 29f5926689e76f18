import { expect } from 'chai';
import { DependencyError } from '../../lib/errors.js';
import {
  blockedBy,
  DependencyGraph,
  dependencyFailedError,
  type GraphDependency,
  type GraphNode,
  type Resolution,
} from '../../lib/registry/dependency-graph.js';

/** `node('workflow@1.0.0', 'auth@^2', 'log@^1?')`: a trailing `?` marks an optional dependency. */
function node(spec: string, ...deps: string[]): GraphNode {
  const [id, version] = spec.split('@');
  const dependencies = deps.map((d): GraphDependency => {
    const [depId, range] = d.replace(/\?$/, '').split('@');
    return d.endsWith('?') ? { id: depId, version: range, optional: true } : { id: depId, version: range };
  });
  return { id, version, dependencies };
}

const resolve = (available: GraphNode[], roots?: string[]) => new DependencyGraph().resolve(available, { roots });
const versions = (r: Resolution) => Object.fromEntries([...r.selected].map(([id, n]) => [id, n.version]));
const failure = (r: Resolution, id: string) => {
  const e = r.failures.get(id);
  expect(e, `${id} should fail`).to.be.instanceOf(DependencyError);
  return { kind: e!.kind, message: e!.message, code: e!.code, pluginId: e!.pluginId, path: e!.path };
};

describe('DependencyGraph', () => {
  it('chooses the highest version that satisfies the range', () => {
    const r = resolve([node('auth@1.4.0'), node('auth@2.0.0'), node('auth@2.1.0'), node('auth@3.0.0'), node('workflow@1.0.0', 'auth@^2')], ['workflow']);
    expect(versions(r)).to.deep.equal({ auth: '2.1.0', workflow: '1.0.0' });
    expect(r.order).to.deep.equal(['auth', 'workflow']);
    expect(r.failures.size).to.equal(0);
  });

  it('narrows the choice to the range every dependent accepts', () => {
    const r = resolve([
      node('auth@2.0.0'), node('auth@2.1.0'), node('auth@2.5.0'),
      node('workflow@1.0.0', 'auth@^2'),
      node('audit@1.0.0', 'auth@>=2.0.0 <2.3.0'),
    ]);
    expect(versions(r).auth).to.equal('2.1.0');
    expect(r.order).to.deep.equal(['auth', 'audit', 'workflow']);
  });

  it('reports a version conflict naming who needs what and what is available', () => {
    const r = resolve([
      node('auth@2.1.0'), node('auth@1.4.0'),
      node('workflow@1.0.0', 'auth@^2'),
      node('audit@1.0.0', 'auth@^1'),
      node('search@1.0.0'),
    ]);
    expect(failure(r, 'auth')).to.include({
      kind: 'conflict',
      code: 'LOGOMESH_ERR_DEPENDENCY',
      pluginId: 'auth',
      message: 'audit needs auth@^1, workflow needs auth@^2; available: 1.4.0, 2.1.0',
    });
    expect(failure(r, 'workflow')).to.include({
      kind: 'failed',
      message: 'workflow cannot load: its dependency auth failed: audit needs auth@^1, workflow needs auth@^2; available: 1.4.0, 2.1.0',
    });
    expect(failure(r, 'audit').kind).to.equal('failed');
    expect(r.order).to.deep.equal(['search']);
  });

  it('reports a missing required dependency with the versions that exist', () => {
    const r = resolve([node('workflow@1.0.0', 'auth@^2'), node('audit@1.0.0', 'mailer@^3'), node('mailer@1.0.0'), node('mailer@2.2.0')]);
    expect(failure(r, 'workflow')).to.include({
      kind: 'missing',
      pluginId: 'workflow',
      message: 'workflow needs auth@^2, which is not available (available versions: none)',
    });
    expect(failure(r, 'audit').message).to.equal('audit needs mailer@^3, which is not available (available versions: 1.0.0, 2.2.0)');
    expect(r.order).to.deep.equal(['mailer']);
  });

  it('reports a requested root that is not available', () => {
    const r = resolve([node('search@1.0.0')], ['search', 'ghost']);
    expect(failure(r, 'ghost')).to.include({ kind: 'missing', message: 'ghost was requested but is not available' });
    expect(r.order).to.deep.equal(['search']);
  });

  it('loads a plugin whose optional dependency is absent and reports it', () => {
    const r = resolve([node('workflow@1.0.0', 'metrics@^1?', 'audit@^2?'), node('audit@1.0.0')], ['workflow']);
    expect(r.order).to.deep.equal(['workflow']);
    expect(r.missingOptional.get('workflow')).to.deep.equal(['audit', 'metrics']);
    expect(r.failures.size).to.equal(0);
  });

  it('loads an optional dependency that is present before its dependent', () => {
    const r = resolve([node('aaa@1.0.0', 'zzz@^1?'), node('zzz@1.0.0'), node('zzz@1.3.0')]);
    expect(r.order).to.deep.equal(['zzz', 'aaa']);
    expect(versions(r).zzz).to.equal('1.3.0');
    expect(r.missingOptional.size).to.equal(0);
  });

  it('fails every member of a 3-cycle with its path and keeps independent plugins', () => {
    const r = resolve([node('a@1.0.0', 'b@*'), node('b@1.0.0', 'c@*'), node('c@1.0.0', 'a@*'), node('search@1.0.0')]);
    expect(failure(r, 'a')).to.deep.include({ kind: 'cycle', message: 'a is part of a dependency cycle: a → b → c → a', path: ['a', 'b', 'c', 'a'] });
    expect(failure(r, 'b')).to.deep.include({ kind: 'cycle', path: ['b', 'c', 'a', 'b'] });
    expect(failure(r, 'c').kind).to.equal('cycle');
    expect(r.order).to.deep.equal(['search']);
  });

  it('fails a 2-cycle and the plugins that depend on it, naming the dependency', () => {
    const r = resolve([node('a@1.0.0', 'b@^1'), node('b@1.0.0', 'a@^1'), node('app@1.0.0', 'b@^1'), node('search@1.0.0')]);
    expect(failure(r, 'b')).to.deep.include({ kind: 'cycle', path: ['b', 'a', 'b'] });
    expect(failure(r, 'app')).to.include({
      kind: 'failed',
      pluginId: 'app',
      message: 'app cannot load: its dependency b failed: b is part of a dependency cycle: b → a → b',
    });
    expect(r.order).to.deep.equal(['search']);
  });

  it('propagates a failure transitively while independent plugins load', () => {
    const r = resolve([node('api@1.0.0', 'workflow@^1'), node('workflow@1.0.0', 'auth@^9'), node('auth@1.0.0'), node('search@1.0.0')]);
    expect(failure(r, 'workflow').kind).to.equal('missing');
    expect(failure(r, 'api').message).to.equal(
      'api cannot load: its dependency workflow failed: workflow needs auth@^9, which is not available (available versions: 1.0.0)',
    );
    expect(r.order).to.deep.equal(['auth', 'search']);
  });

  it('does not pull in dependencies of a requested plugin that cannot load', () => {
    const r = resolve([node('workflow@1.0.0', 'log@^1', 'auth@^9'), node('log@1.0.0')], ['workflow']);
    expect(failure(r, 'workflow').kind).to.equal('missing');
    expect(r.selected.size).to.equal(0);
  });

  it('orders a diamond dependencies first, ties by id', () => {
    const r = resolve([node('app@1.0.0', 'right@^1', 'left@^1'), node('right@1.0.0', 'base@^1'), node('left@1.0.0', 'base@^1'), node('base@1.0.0')]);
    expect(r.order).to.deep.equal(['base', 'left', 'right', 'app']);
  });

  it('gives the same resolution for any input order', () => {
    const input = [
      node('app@1.0.0', 'left@^1', 'right@^1', 'metrics@^1?'), node('left@1.0.0', 'base@^1'), node('right@1.0.0', 'base@~1.1'),
      node('base@1.0.0'), node('base@1.1.5'), node('base@1.2.0'), node('x@1.0.0', 'y@^1'), node('y@1.0.0', 'x@^1'), node('solo@1.0.0'),
    ];
    const summary = (r: Resolution) => ({
      order: r.order,
      versions: versions(r),
      failures: [...r.failures].map(([id, e]) => [id, e.kind, e.message]).sort(),
      missingOptional: [...r.missingOptional],
    });
    const expected = summary(resolve(input));
    expect(expected.order).to.deep.equal(['base', 'left', 'right', 'app', 'solo']);
    expect(expected.versions.base).to.equal('1.1.5');
    for (let seed = 1; seed <= 20; seed++) {
      const shuffled = [...input].sort((a, b) => hash(a.id + a.version, seed) - hash(b.id + b.version, seed));
      expect(summary(resolve(shuffled))).to.deep.equal(expected);
    }
  });
});

describe('blockedBy', () => {
  it('lists the selected plugins that transitively require the failed one, in load order', () => {
    const r = resolve([
      node('auth@1.0.0'), node('workflow@1.0.0', 'auth@^1'), node('api@1.0.0', 'workflow@^1'),
      node('dashboard@1.0.0', 'auth@^1?'), node('search@1.0.0'),
    ]);
    expect(blockedBy(r, 'auth')).to.deep.equal(['workflow', 'api']);
    expect(blockedBy(r, 'workflow')).to.deep.equal(['api']);
    expect(blockedBy(r, 'search')).to.deep.equal([]);
  });

  it('pairs with dependencyFailedError for the runtime reason', () => {
    const e = dependencyFailedError('workflow', 'auth', 'activation timed out');
    expect(e).to.be.instanceOf(DependencyError);
    expect(e).to.include({ kind: 'failed', pluginId: 'workflow', message: 'workflow cannot start: its dependency auth failed: activation timed out' });
  });
});

function hash(s: string, seed: number): number {
  let h = seed;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 2654435761) >>> 0;
  return h;
}
