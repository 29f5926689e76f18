// A plain JavaScript plugin: decorators are applied as functions, since JavaScript has no
// decorator syntax in this V8.
import { Plugin, Expose, OnEvent } from '@logomesh/plugin-host/sdk';

class WordStats {
  constructor(ctx) {
    this.ctx = ctx;
    this.seen = 0;
  }

  async headline(text) {
    const [slug, words] = await Promise.all([
      this.ctx.call('text-processor', 'slug', text),
      this.ctx.call('text-processor', 'words', text),
    ]);
    return { slug, words, title: await this.ctx.call('text-processor', 'upper', text) };
  }

  indexed(event) {
    this.seen += 1;
    this.ctx.log.debug('document indexed', { id: event.id });
  }

  count() {
    return this.seen;
  }
}

Expose()(WordStats.prototype, 'headline');
Expose()(WordStats.prototype, 'count');
OnEvent('indexed')(WordStats.prototype, 'indexed');
export default Plugin()(WordStats);
