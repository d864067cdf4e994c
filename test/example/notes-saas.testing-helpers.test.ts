// The notes-saas app's own test file (examples/notes-saas/test/notes.test.ts, also run by the
// example's `pnpm test`), run here with the rest of the suite: it is the worked example of
// @shardines/core/testing (docs/testing.md), so it must keep passing.
import '../../examples/notes-saas/test/notes.test.js'
