// The same behavioural suite, on the distributed engines (see test/support/engines.ts).
process.env.FLASHSALE_TEST_ENGINES = 'distributed';
await import('../fulfillment.test.ts');
