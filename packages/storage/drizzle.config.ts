import { defineConfig } from 'drizzle-kit';

// `pnpm generate` writes a new migration into ./drizzle whenever src/schema.ts changes.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/schema.ts',
  out: './drizzle',
});
