// Test projects: unit (pure, no servers), integration (real servers started once per
// run by the harness), e2e (the system driven from outside).
import { defineConfig } from 'vitest/config';

const roots = '{contract,operator,dataplane,client,e2e,bench,lint,image,web,observability}';

export default defineConfig({
  test: {
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: [`${roots}/**/*.test.ts`],
          exclude: ['**/*.int.test.ts', '**/*.e2e.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: [`${roots}/**/*.int.test.ts`],
          globalSetup: ['e2e/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.e2e.test.ts', 'image/**/*.e2e.test.ts'],
          globalSetup: ['e2e/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
