import { expect } from 'chai';
import { isValidTopic, isValidTopicPattern, topicMatches } from '../../lib/events/topic.js';

describe('topic patterns', () => {
  const cases: [string, string, boolean][] = [
    ['document.saved', 'document.saved', true],
    ['document.*', 'document.saved', true],
    ['document.*', 'document', false],
    ['document.*', 'document.saved.v2', false],
    ['*.saved', 'image.saved', true],
    ['document.**', 'document', true],
    ['document.**', 'document.a.b.c', true],
    ['**', 'anything.at.all', true],
    ['document.saved', 'document.savedx', false],
    ['doc.*', 'document.saved', false],
  ];
  for (const [pattern, topic, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      expect(topicMatches(pattern, topic)).to.equal(expected);
    });
  }

  it('accepts concrete topics and refuses wildcards, empty segments and odd characters in them', () => {
    expect(isValidTopic('document.saved')).to.equal(true);
    for (const bad of ['', 'a..b', 'a.*', 'a b', 'a/b', 'x'.repeat(300), 42]) expect(isValidTopic(bad), String(bad)).to.equal(false);
  });

  it('accepts * anywhere and ** only last in patterns', () => {
    expect(isValidTopicPattern('a.*.c')).to.equal(true);
    expect(isValidTopicPattern('a.**')).to.equal(true);
    expect(isValidTopicPattern('a.**.c')).to.equal(false);
    expect(isValidTopicPattern('a.b*')).to.equal(false);
  });
});
