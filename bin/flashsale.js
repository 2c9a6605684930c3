#!/usr/bin/env node
// Thin launcher so `npx flashsale …` runs the TypeScript CLI through tsx without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
