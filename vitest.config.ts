import { defineConfig } from 'vitest/config';

// Unit and in-process SSH tests: no root, no system services.
export default defineConfig({
  test: {
    globalSetup: ['test/setup/build.ts', 'test/setup/cache-home.ts'],
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.e2e.test.ts', 'node_modules/**'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
