// The storage behaviour suite on the SQLite adapter declaring none of the
// optional capabilities but syncReads (its handles read synchronously whatever
// it declares): the suite's branches for adapters without attach, backups,
// exports, rename, archive, doctor and layout migration (CrossDatabaseQueryError,
// includes across apex as separate reads, typed refusals) run on a driver
// known to pass the rest.
import { storageBehaviourSuite } from './storage-behaviour-suite.js'
import { sqliteTargetWithout } from './targets/sqlite-target.js'

storageBehaviourSuite(
  sqliteTargetWithout('sqlite without optional capabilities', [
    'attach',
    'workerMigrations',
    'backupToPath',
    'exportStream',
    'rename',
    'archive',
    'doctor',
    'layoutMigration',
  ]),
)
