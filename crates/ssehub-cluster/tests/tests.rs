//! ssehub-cluster's tests, each against a real `redis-server` the test starts.

mod conformance;
mod feed;
mod replicated;
mod retention;
mod topic_retention;
