import { expect } from 'chai';
import { Expose, OnEvent, Plugin, PLUGIN_META, type PluginContext, type PluginMeta } from '../../lib/sdk/index.js';

@Plugin({ id: 'typed' })
class Typed {
  constructor(readonly ctx: PluginContext) {}
  @Expose() upper(text: string) {
    return text.toUpperCase();
  }
  @Expose({ name: 'lower' }) toLower(text: string) {
    return text.toLowerCase();
  }
  @OnEvent('document.*') saved() {}
}

@Plugin()
class Derived extends Typed {
  @Expose() extra() {}
}

// Type-level checks: these lines must NOT compile (tsc fails the build if one does).
// @ts-expect-error a topic pattern is a string
class BadPattern { @OnEvent(42) x() {} }
// @ts-expect-error @Plugin() decorates classes, not methods
class BadPlugin { @Plugin() x() {} }
void BadPattern;
void BadPlugin;

describe('SDK decorators', () => {
  const meta = (c: object) => (c as { [PLUGIN_META]: PluginMeta })[PLUGIN_META];

  it('record exposed methods (with their public names), handlers and plugin options on the class', () => {
    expect(meta(Typed).plugin).to.deep.equal({ id: 'typed' });
    expect(meta(Typed).exposed).to.deep.equal({ upper: { name: 'upper' }, lower: { name: 'toLower' } });
    expect(meta(Typed).handlers).to.deep.equal([{ pattern: 'document.*', method: 'saved' }]);
  });

  it('inherit a base class registration without changing the base', () => {
    expect(Object.keys(meta(Derived).exposed)).to.deep.equal(['upper', 'lower', 'extra']);
    expect(Object.keys(meta(Typed).exposed)).to.deep.equal(['upper', 'lower']);
  });
});
