import { gateContract } from './contract.ts';
import { MemoryStockGate } from './memory.ts';

gateContract('memory', async () => new MemoryStockGate());
