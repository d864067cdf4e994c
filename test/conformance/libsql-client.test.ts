// The storage behaviour suite on @shardines/adapter-libsql in client mode (@libsql/client on file: URLs).
import { storageBehaviourSuite } from './storage-behaviour-suite.js'
import { libsqlClientTarget } from './targets/libsql-targets.js'

storageBehaviourSuite(libsqlClientTarget)
