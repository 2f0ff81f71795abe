/**
 * Applying the generated migrations in `../drizzle` to a file, new or existing, safely when
 * several processes open one new file at once. Drizzle keeps the schema and its migrations;
 * everything else runs as prepared SQL.
 * @module
 */
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { StorageError } from '../storage-error.js';
import { errorMessage } from './validation.js';

/**
 * Where the generated migrations live. Resolved from this module so it works both from
 * `src/internal/` (tests) and from `dist/internal/` (the published package): both sit two
 * levels below `drizzle/`.
 */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Another process may be migrating the same new file at the same moment; retry that race. */
const MIGRATION_ATTEMPTS = 5;

/**
 * Applies pending migrations unless the file is already up to date. Drizzle's migrator reads
 * the applied version outside its transaction, so two processes opening one new file can both
 * try; the loser fails (table exists) and, on a re-check, finds the file up to date.
 *
 * @throws {@link StorageError} `MIGRATION_FAILED`
 */
export function applyMigrations(db: Database.Database, dbfile: string): void {
  let migrations: ReturnType<typeof readMigrationFiles>;
  try {
    migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
  } catch (cause) {
    throw new StorageError(
      'MIGRATION_FAILED',
      `cannot read the migrations in ${MIGRATIONS_FOLDER}: ${errorMessage(cause)}. Reinstall @sheepdog/storage; its drizzle/ folder must ship with it.`,
      { cause },
    );
  }
  const latest = Math.max(0, ...migrations.map((m) => m.folderMillis));
  for (let attempt = 1; ; attempt++) {
    if (appliedMigration(db) >= latest) return;
    try {
      migrate(drizzle(db), { migrationsFolder: MIGRATIONS_FOLDER });
      return;
    } catch (cause) {
      if (db.inTransaction) db.exec('ROLLBACK');
      if (appliedMigration(db) >= latest) return;
      if (attempt >= MIGRATION_ATTEMPTS) {
        throw new StorageError(
          'MIGRATION_FAILED',
          `cannot apply the schema migrations to ${dbfile}: ${errorMessage(cause)}. If the file was not made by Sheepdog, use another dbfile.`,
          { cause },
        );
      }
    }
  }
}

/** The `when` of the newest migration applied to the file, 0 when none. */
function appliedMigration(db: Database.Database): number {
  const hasTable = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'")
    .get();
  if (hasTable === undefined) return 0;
  const row = db.prepare('SELECT max(created_at) AS latest FROM __drizzle_migrations').get() as {
    latest: number | string | null;
  };
  return Number(row.latest ?? 0);
}
