import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // One PostgreSQL for the whole run, unit and integration; each hub or registry gets a database of its own on it (test/support/postgres.ts).
    globalSetup: ['test/support/postgres.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.unit.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          // Each file starts its own influxd, broker and hub; give start-up room.
          testTimeout: 30_000,
          hookTimeout: 60_000,
          pool: 'forks',
        },
      },
    ],
  },
})
