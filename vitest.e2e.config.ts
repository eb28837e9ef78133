import { defineConfig } from 'vitest/config';

// End-to-end tests against real OpenSSH, uWSGI and nginx on loopback.
// They need root on Debian (see test/lab/) and run one file at a time,
// because they share system users and the uWSGI emperor.
export default defineConfig({
  test: {
    globalSetup: ['test/setup/build.ts', 'test/setup/cache-home.ts'],
    include: ['test/**/*.e2e.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
