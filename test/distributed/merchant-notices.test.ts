// The same behavioural suite, on the distributed engines (see test/support/engines.ts).
process.env.FLASHSALE_TEST_ENGINES = 'distributed';
await import('../merchant-notices.test.ts');
