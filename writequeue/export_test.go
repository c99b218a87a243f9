package writequeue

// SleepCtx lets the external tests (package writequeue_test) use the queue's
// sleepCtx rather than a copy of it.
var SleepCtx = sleepCtx
