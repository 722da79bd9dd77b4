import { defaultClientConditions, defaultServerConditions } from 'vite'
import { defineConfig } from 'vitest/config'

// Tests run the TypeScript sources: the "development" export condition of every
// @trellis/* package points at src/, the default one at the tsc build in dist/.
// Processes the tests start with `node --import tsx` inherit NODE_OPTIONS, so they
// run the sources too; tests of the built artifact clear it.
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, '--conditions=development'].filter(Boolean).join(' ')

export default defineConfig({
  resolve: { conditions: ['development', ...defaultClientConditions] },
  ssr: { resolve: { conditions: ['development', ...defaultServerConditions], externalConditions: ['development'] } },
  test: {
    // One PostgreSQL for the whole run, unit and integration; each hub or registry gets a database of its own on it (test/support/postgres.ts).
    globalSetup: ['test/support/postgres.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.unit.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          // Each file starts its own influxd, broker and hub; give start-up room.
          testTimeout: 30_000,
          hookTimeout: 60_000,
          pool: 'forks',
          // Builds dist/ once (incremental: a second when nothing changed) for the tests of the built artifact.
          globalSetup: ['test/ops/build.global.ts'],
        },
      },
    ],
  },
})
