//! ssehub-cluster's tests, each against a real `redis-server` the test starts.

mod conformance;
mod directory;
mod feed;
mod relay;
mod replicated;
mod retention;
mod topic_retention;
