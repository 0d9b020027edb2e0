//! The pure per-job state machine of cluster mode (cluster spec 6.3, 7.4): filled in by
//! the next commit.
