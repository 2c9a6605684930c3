import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MalformedEventError, readPayload } from './event-contract.ts';
import { Type } from '@sinclair/typebox';

/** A contract shaped like a component's (platform tests import no component). */
const OrderDeadline = Type.Object({ orderId: Type.String(), check: Type.Union([Type.Literal('close'), Type.Literal('recovery')]) });

describe('event contracts', () => {
  const message = (payload: unknown) => ({ id: '00000000-0000-4000-8000-000000000001', topic: 'order.deadline', payload });

  it('when a payload matches its contract, then it is returned as typed', () => {
    const payload = readPayload(OrderDeadline, message({ orderId: 'o1', check: 'close' }));
    assert.equal(payload.check, 'close');
  });

  it('when a payload breaks its contract, then MalformedEventError names the topic, the message and the path', () => {
    for (const bad of [{ orderId: 'o1', check: 'later' }, { check: 'close' }, null, 'o1', { orderId: 7, check: 'close' }]) {
      assert.throws(() => readPayload(OrderDeadline, message(bad)), (error: unknown) => {
        assert.ok(error instanceof MalformedEventError, String(error));
        assert.match(error.message, /order\.deadline 00000000-0000-4000-8000-000000000001: the payload breaks its contract at/);
        return true;
      });
    }
  });
});
