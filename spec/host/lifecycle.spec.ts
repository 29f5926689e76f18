import { expect } from 'chai';
import { canTransition, PluginLifecycle, type PluginState } from '../../lib/host/lifecycle.js';
import { LifecycleError } from '../../lib/errors.js';

describe('PluginLifecycle', () => {
  it('walks the normal path and reports each transition', () => {
    const seen: string[] = [];
    const lc = new PluginLifecycle('p', (from, to) => seen.push(`${from}→${to}`));
    for (const s of ['loaded', 'starting', 'started', 'stopping', 'stopped', 'unloaded'] as PluginState[]) lc.transition(s);
    expect(seen).to.deep.equal(['registered→loaded', 'loaded→starting', 'starting→started', 'started→stopping', 'stopping→stopped', 'stopped→unloaded']);
  });

  it('throws a typed error naming the plugin and both states on an illegal transition', () => {
    const lc = new PluginLifecycle('p', () => undefined);
    expect(() => lc.transition('started')).to.throw(LifecycleError).with.property('from', 'registered');
    expect(lc.state).to.equal('registered');
  });

  it('lets crashed and failed plugins be reloaded, and nothing leave unloaded', () => {
    expect(canTransition('crashed', 'loaded')).to.equal(true);
    expect(canTransition('failed', 'loaded')).to.equal(true);
    expect(canTransition('started', 'crashed')).to.equal(true);
    for (const s of ['registered', 'loaded', 'started', 'stopped'] as PluginState[]) expect(canTransition('unloaded', s)).to.equal(false);
  });
});
