#!/usr/bin/env node
// The CLI ships compiled (npm's `prepare` builds dist/), so starting it costs
// no TypeScript compiler; only a user's deployfile.ts is compiled, by jiti.
import { main } from '../dist/src/cli/main.js';

await main();
