// The SQLite adapter runs the whole storage behaviour suite, with no skips.
import { sqliteFactory } from '../helpers/fixtures.js'
import { storageBehaviourSuite } from './storage-behaviour-suite.js'

storageBehaviourSuite('sqlite', sqliteFactory)
