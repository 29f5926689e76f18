import { expect } from 'chai';
import type { AuditEvent } from '../../lib/gateway/api-gateway.js';
import { SecurityMonitor, type SecurityEvidence, type SecurityMonitorOptions } from '../../lib/monitor/security-monitor.js';
import type { Alert, PluginController } from '../../lib/monitor/types.js';

type Call = [op: string, pluginId: string, arg?: string | number];

function fakeController(suspendError?: Error): PluginController & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    throttle: (id, ms) => void calls.push(['throttle', id, ms]),
    suspend: (id, why) => {
      calls.push(['suspend', id, why]);
      if (suspendError) throw suspendError;
    },
    resume: (id) => void calls.push(['resume', id]),
    restart: async (id, why) => void calls.push(['restart', id, why]),
    kill: async (id, why) => void calls.push(['kill', id, why]),
  };
}

const denied = (at: number, target = `/etc/secret-${at}`, pluginId = 'prober'): AuditEvent => ({
  pluginId,
  operation: 'fs.readFile',
  target,
  outcome: 'denied',
  code: 'LOGOMESH_ERR_PERMISSION_DENIED',
  at,
});

describe('SecurityMonitor', () => {
  let controller: ReturnType<typeof fakeController>;
  let alerts: Alert[];

  function monitor(options: SecurityMonitorOptions = {}, ctl = fakeController()): SecurityMonitor {
    controller = ctl;
    const m = new SecurityMonitor(options, controller, () => 42);
    m.alerts$.subscribe((a) => alerts.push(a));
    return m;
  }

  beforeEach(() => (alerts = []));

  it('suspends a plugin once on a burst of denials, with the denials as evidence', () => {
    const m = monitor();
    for (let i = 0; i < 15; i++) m.observe(denied(i * 500));
    expect(alerts).to.have.length(1);
    const [alert] = alerts;
    expect(alert).to.include({ kind: 'security', pluginId: 'prober', action: 'suspend', value: 10, threshold: 10, at: 42 });
    const { denials } = alert!.evidence as SecurityEvidence;
    expect(denials).to.have.length(10);
    expect(denials[0]).to.deep.equal({ operation: 'fs.readFile', target: '/etc/secret-0', code: 'LOGOMESH_ERR_PERMISSION_DENIED', at: 0 });
    expect(controller.calls).to.have.length(1);
    expect(controller.calls[0]!.slice(0, 2)).to.deep.equal(['suspend', 'prober']);
    expect(controller.calls[0]![2]).to.match(/^security threat: 10 denied operations within 10000 ms \(fs\.readFile \/etc\/secret-0, .*, …\)$/);
  });

  it('re-arms after forget', () => {
    const m = monitor();
    for (let i = 0; i < 10; i++) m.observe(denied(i));
    m.forget('prober');
    for (let i = 0; i < 10; i++) m.observe(denied(100 + i));
    expect(alerts.map((a) => a.action)).to.deep.equal(['suspend', 'suspend']);
    expect(controller.calls.map(([op]) => op)).to.deep.equal(['suspend', 'suspend']);
  });

  it('does not alert below the burst, outside the window, or on allowed and failed outcomes', () => {
    const m = monitor({ burst: 5, windowMs: 1000 });
    for (let i = 0; i < 4; i++) m.observe(denied(i));
    // Five denials, but never five within one second.
    for (let i = 0; i < 8; i++) m.observe(denied(2000 + i * 300));
    for (let i = 0; i < 10; i++) m.observe({ ...denied(5000 + i), outcome: i % 2 ? 'allowed' : 'failed' });
    // Other plugins' denials are counted separately.
    for (let i = 0; i < 4; i++) m.observe(denied(6000 + i, 'x', `other-${i}`));
    expect(alerts).to.deep.equal([]);
    expect(controller.calls).to.deep.equal([]);
  });

  it('without isolateOnSecurityThreat only logs, and each alert takes a fresh burst', () => {
    const m = monitor({ isolateOnSecurityThreat: false, burst: 3 });
    for (let i = 0; i < 8; i++) m.observe(denied(i, '/same'));
    expect(alerts.map((a) => [a.action, a.value])).to.deep.equal([
      ['log', 3],
      ['log', 3],
    ]);
    expect(alerts[0]!.message).to.equal("plugin 'prober': 3 denied operations within 10000 ms (fs.readFile /same)");
    expect(controller.calls).to.deep.equal([]);
  });

  it('reports a failed suspend and keeps watching', () => {
    const m = monitor({ burst: 2 }, fakeController(new Error('no such plugin')));
    for (let i = 0; i < 4; i++) m.observe(denied(i));
    expect(alerts).to.have.length(2);
    expect(alerts[0]!.message).to.match(/suspend failed: no such plugin$/);
  });
});
