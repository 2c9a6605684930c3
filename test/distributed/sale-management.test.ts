// The same behavioural suite, on the distributed engines (see test/support/engines.ts): edits,
// added stock and a cancel in the middle of a rush on PostgreSQL, Redis and RabbitMQ.
process.env.FLASHSALE_TEST_ENGINES = 'distributed';
await import('../sale-management.test.ts');
