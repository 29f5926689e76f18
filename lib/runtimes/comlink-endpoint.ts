import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';

/**
 * A Node `MessagePort` as a comlink `Endpoint` (comlink speaks the DOM's `addEventListener`
 * with `{ data }` events). `admit`, when given, filters incoming messages before comlink sees
 * them: the host side uses it so a worker can reach only the methods it is meant to.
 *
 * @example
 * Comlink.expose(api, portEndpoint(port, (m) => isAllowedCall(m)));
 * const remote = Comlink.wrap<Api>(portEndpoint(port));
 */
export function portEndpoint(port: MessagePort, admit: (data: unknown) => boolean = () => true): Endpoint {
  type Listener = (event: { data: unknown }) => void;
  const listeners = new Map<unknown, (data: unknown) => void>();
  const call = (listener: unknown, data: unknown) => {
    const l = listener as Listener | { handleEvent: Listener };
    if (typeof l === 'function') l({ data });
    else l.handleEvent({ data });
  };
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => port.postMessage(message, transfer as never),
    addEventListener(_type: string, listener: unknown) {
      const onMessage = (data: unknown) => {
        if (admit(data)) call(listener, data);
      };
      listeners.set(listener, onMessage);
      port.on('message', onMessage);
    },
    removeEventListener(_type: string, listener: unknown) {
      const onMessage = listeners.get(listener);
      if (onMessage) port.off('message', onMessage);
      listeners.delete(listener);
    },
    start: () => port.start(),
  } as Endpoint;
}
