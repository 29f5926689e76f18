import { expect } from 'chai';
import { EventBus } from '../../lib/events/event-bus.js';
import type { BusEvent } from '../../lib/events/host-events.js';
import { InvalidArgumentError } from '../../lib/errors.js';

const event = (topic: string, source = 'host'): BusEvent => ({ topic, data: { topic }, source, at: Date.now() });

describe('EventBus', () => {
  it('delivers to matching subscribers with the patterns that matched, never back to the source', async () => {
    const bus = new EventBus({});
    const got: [string, string[]][] = [];
    bus.subscribe({ pluginId: 'a', patterns: ['doc.*', 'doc.saved'], capabilities: [], deliver: async (e, m) => void got.push([e.topic, m]) });
    bus.subscribe({ pluginId: 'b', patterns: ['doc.*'], capabilities: [], deliver: async () => void got.push(['b', []]) });
    const report = await bus.publish(event('doc.saved', 'b'));
    expect(report.delivered).to.deep.equal(['a']);
    expect(got).to.deep.equal([['doc.saved', ['doc.*', 'doc.saved']]]);
  });

  it('delivers one event at a time per subscriber, in order', async () => {
    const bus = new EventBus({});
    const order: string[] = [];
    bus.subscribe({
      pluginId: 'a',
      patterns: ['**'],
      capabilities: [],
      deliver: async (e) => {
        order.push(`start ${e.topic}`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`end ${e.topic}`);
      },
    });
    await Promise.all([bus.publish(event('one')), bus.publish(event('two'))]);
    expect(order).to.deep.equal(['start one', 'end one', 'start two', 'end two']);
  });

  it('bounds each subscriber queue and counts drops, while a fast subscriber receives everything', async () => {
    const bus = new EventBus({ eventQueueLimit: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    bus.subscribe({ pluginId: 'slow', patterns: ['t'], capabilities: [], deliver: () => gate });
    bus.subscribe({ pluginId: 'fast', patterns: ['t'], capabilities: [], deliver: async () => undefined });
    const pending: ReturnType<EventBus['publish']>[] = [];
    for (let i = 0; i < 5; i++) {
      pending.push(bus.publish(event('t')));
      await new Promise((r) => setImmediate(r));
    }
    expect(bus.queueStats('slow')).to.deep.include({ queued: 2, dropped: 3 });
    release();
    const reports = await Promise.all(pending);
    expect(reports.filter((r) => r.dropped.includes('slow'))).to.have.length(3);
    expect(reports.filter((r) => r.delivered.includes('fast'))).to.have.length(5);
  });

  it('reports a failing subscriber without affecting the others', async () => {
    const bus = new EventBus({});
    bus.subscribe({ pluginId: 'bad', patterns: ['t'], capabilities: [], deliver: async () => Promise.reject(new Error('nope')) });
    bus.subscribe({ pluginId: 'good', patterns: ['t'], capabilities: [], deliver: async () => undefined });
    const report = await bus.publish(event('t'));
    expect(report.delivered).to.deep.equal(['good']);
    expect(report.failed.map((f) => f.pluginId)).to.deep.equal(['bad']);
  });

  it('refuses an invalid topic', async () => {
    const bus = new EventBus({});
    let error: unknown;
    await bus.publish(event('a.*')).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(InvalidArgumentError);
  });
});
