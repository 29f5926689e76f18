import { Plugin, Expose, OnEvent, type PluginContext } from '@logomesh/plugin-host/sdk';
import { slugify, wordCount } from './text.js';

@Plugin({ id: 'text-processor' })
export default class TextProcessor {
  private indexed = 0;

  constructor(private readonly ctx: PluginContext) {}

  async onStart() {
    this.ctx.log.info('text-processor ready');
  }

  @Expose() upper(text: string) {
    return text.toUpperCase();
  }

  @Expose() lower(text: string) {
    return text.toLowerCase();
  }

  @Expose() slug(text: string) {
    return slugify(text);
  }

  @Expose() words(text: string) {
    return wordCount(text);
  }

  @OnEvent('document.*')
  async saved(doc: { id: number; text?: string }) {
    this.indexed++;
    await this.ctx.emit('indexed', { id: doc.id, words: wordCount(doc.text ?? ''), total: this.indexed });
  }

  serializeState() {
    return { indexed: this.indexed };
  }

  deserializeState(state: { indexed: number }) {
    this.indexed = state.indexed;
  }
}
