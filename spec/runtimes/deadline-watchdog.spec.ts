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

  it('all watchdogs share one timer: 50 sandboxes with a pending deadline hold one timer, and none once they settle', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const watchdogs = Array.from({ length: 50 }, () => new DeadlineWatchdog());
    const cancels = watchdogs.map((w, i) => w.add(10_000 + i, () => undefined));
    // At most one more: none if another spec's deadline already holds the shared timer.
    expect(timers() - before).to.be.at.most(1);
    for (const cancel of cancels) cancel();
    // The shared timer no longer keeps the process alive (it is unref'd, not one per sandbox).
    expect(timers()).to.equal(before);
    const fired: number[] = [];
    watchdogs[7].add(20, () => fired.push(7));
    watchdogs[3].add(10, () => fired.push(3));
    await sleep(60);
    expect(fired).to.deep.equal([3, 7]);
  });

  it("one watchdog's disposal leaves the others' deadlines to fire", async () => {
    const [a, b] = [new DeadlineWatchdog(), new DeadlineWatchdog()];
    const fired: string[] = [];
    a.add(10, () => fired.push('a'));
    b.add(20, () => fired.push('b'));
    a.dispose();
    await sleep(60);
    expect(fired).to.deep.equal(['b']);
    expect([a.size, b.size]).to.deep.equal([0, 0]);
  });
});
