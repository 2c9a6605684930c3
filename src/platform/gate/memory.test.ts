import { gateContract } from './conformance.ts';
import { MemoryStockGate } from './memory.ts';

gateContract('memory', async () => new MemoryStockGate());
