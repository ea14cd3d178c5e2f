import { defineConfig } from 'vitest/config';

// Native-addon suites run in forked processes: an addon loaded into worker threads can
// take the whole run down.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['__test__/**/*.test.{js,mjs}'],
    testTimeout: 30000,
    hookTimeout: 30000,
  },
});
