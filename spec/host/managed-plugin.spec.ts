import { expect } from 'chai';
import { PluginLifecycle } from '../../lib/host/lifecycle.js';
import { ManagedPlugin } from '../../lib/host/managed-plugin.js';
import { DEFAULT_RESOURCE_LIMITS } from '../../lib/registry/manifest-schema.js';

const plugin = () =>
  new ManagedPlugin(
    { manifest: { id: 'p', name: 'p', version: '1.0.0', entryPoint: 'index.js', runtime: 'nodejs', apiVersion: '^1.0.0' }, dir: '/p', manifestPath: '/p/plugin.json' },
    new PluginLifecycle('p', () => undefined),
    { ...DEFAULT_RESOURCE_LIMITS },
  );

describe('ManagedPlugin suspensions', () => {
  it('stays suspended while any holder holds it; one holder letting go does not lift another', () => {
    const p = plugin();
    expect(p.hold('governor', 'cpu over limit')).to.equal(true);
    expect(p.hold('security', 'denial burst')).to.equal(false);
    expect(p.suspended).to.equal('cpu over limit; denial burst');
    expect(p.release('governor')).to.equal(false);
    expect(p.suspended).to.equal('denial burst');
    expect(p.release('security')).to.equal(true);
    expect(p.suspended).to.equal(undefined);
  });

  it('release() without a holder lifts every suspension', () => {
    const p = plugin();
    p.hold('governor', 'a');
    p.hold('host', 'b');
    expect(p.release()).to.equal(true);
    expect(p.suspended).to.equal(undefined);
  });
});

describe('ManagedPlugin call chains', () => {
  it('names the chain a call it makes now is made for only while exactly one operation runs', () => {
    const p = plugin();
    expect(p.callChain()).to.equal(undefined);
    const first = p.begin('relay', ['a', 'b']);
    expect(p.callChain()).to.deep.equal(['a', 'b', 'p']);
    const second = p.begin('other');
    expect(p.callChain(), 'two operations: the call cannot be told apart').to.equal(undefined);
    p.end(first, 1, true);
    expect(p.callChain()).to.deep.equal(['p']);
    p.end(second, 1, true);
    expect(p.callChain()).to.equal(undefined);
  });
});
