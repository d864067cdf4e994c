// The storage behaviour suite on @shardines/adapter-libsql in local mode (the libsql package).
import { storageBehaviourSuite } from './storage-behaviour-suite.js'
import { libsqlLocalTarget } from './targets/libsql-targets.js'

storageBehaviourSuite(libsqlLocalTarget)
