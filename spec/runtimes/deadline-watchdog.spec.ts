import { expect } from 'chai';
import { DeadlineWatchdog } from '../../lib/runtimes/deadline-watchdog.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineWatchdog', () => {
  it('fires each deadline that was not cancelled, in time order, with one timer', async () => {
    const w = new DeadlineWatchdog();
    const fired: string[] = [];
    w.add(60, () => fired.push('late'));
    const cancel = w.add(20, () => fired.push('cancelled'));
    w.add(30, () => fired.push('early'));
    cancel();
    await sleep(100);
    expect(fired).to.deep.equal(['early', 'late']);
    expect(w.size).to.equal(0);
  });

  it('an expiry that disposes the watchdog stops the others', async () => {
    const w = new DeadlineWatchdog();
    const fired: string[] = [];
    w.add(10, () => {
      fired.push('first');
      w.dispose();
    });
    w.add(10, () => fired.push('second'));
    w.add(40, () => fired.push('third'));
    await sleep(80);
    expect(fired).to.deep.equal(['first']);
  });
});
