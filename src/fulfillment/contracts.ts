import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum, Timestamp, Uuid } from '../platform/http/schemas.ts';

/** Fulfillment's events: producers type against these schemas, consumers check payloads with them (readPayload). */
export const FulfillmentTopics = {
  /** Lines of a paid order left with a carrier (a tracking number to follow). */
  shipped: 'shipment.shipped',
  /** The carrier delivered a shipment. */
  delivered: 'shipment.delivered',
} as const;

const ShippedLine = Type.Object({ saleItemId: Type.String(), quantity: Type.Integer() });

/** `completesOrder`: no line of the order is left pending once this shipment has left (absent in events of earlier versions). */
export const ShipmentShipped = Type.Object({
  shipmentId: Type.String(), orderId: Type.String(), userId: Type.String(), carrier: Type.String(), trackingNumber: Type.String(), items: Type.Array(ShippedLine),
  completesOrder: Type.Optional(Type.Boolean()),
});
export type ShipmentShipped = Static<typeof ShipmentShipped>;

export const ShipmentDelivered = Type.Object({ shipmentId: Type.String(), orderId: Type.String(), userId: Type.String(), carrier: Type.String(), trackingNumber: Type.String() });
export type ShipmentDelivered = Static<typeof ShipmentDelivered>;

/**
 * A shipment: PENDING (opened when the order was paid; its lines wait to be shipped), SHIPPED
 * (with a carrier and tracking number), DELIVERED, or CANCELLED (every line it held was cancelled).
 */
export const SHIPMENT_STATUSES = ['PENDING', 'SHIPPED', 'DELIVERED', 'CANCELLED'] as const;
export type ShipmentStatus = (typeof SHIPMENT_STATUSES)[number];
export const SHIPMENT_LINE_STATUSES = ['PENDING', 'SHIPPED', 'CANCELLED'] as const;
export type ShipmentLineStatus = (typeof SHIPMENT_LINE_STATUSES)[number];

/** The shipment shape every answer uses: the merchant's routes, and the tracking on a buyer's order. */
export const ShipmentSchema = Type.Object({
  id: Uuid,
  orderId: Uuid,
  status: StringEnum(SHIPMENT_STATUSES),
  carrier: Nullable(Type.String()),
  trackingNumber: Nullable(Type.String()),
  createdAt: Timestamp,
  shippedAt: Nullable(Timestamp),
  deliveredAt: Nullable(Timestamp),
  items: Type.Array(Type.Object({ saleItemId: Uuid, quantity: Type.Integer(), status: StringEnum(SHIPMENT_LINE_STATUSES) })),
});
export type Shipment = Static<typeof ShipmentSchema>;
