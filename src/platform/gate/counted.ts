import { GateUnavailableError, type StockGate } from './gate.ts';

/**
 * The gate, with every decision told to `count`: `admitted`, the refusal reason, or `unavailable`
 * (the gate could not decide). Everything else is the gate's own (bound to it, so private state works).
 */
export function countingGate(gate: StockGate, count: (outcome: string) => void): StockGate {
  const admit: StockGate['admit'] = async (userId, lines, nowMs) => {
    try {
      const admission = await gate.admit(userId, lines, nowMs);
      count(admission.ok ? 'admitted' : admission.reason);
      return admission;
    } catch (error) {
      count(error instanceof GateUnavailableError ? 'unavailable' : 'error');
      throw error;
    }
  };
  return new Proxy(gate, {
    get(target, prop) {
      if (prop === 'admit') return admit;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
