//! Integration tests: the real application over HTTP, against a real Redis and the in-process
//! store. One file per feature.

mod helpers;

mod boundaries;
mod browser;
mod cli;
mod cors;
mod deploy;
mod django;
mod faults;
mod fidelity;
mod hostile;
mod instances;
mod interop;
mod keys;
mod login;
mod logout;
mod me;
mod openapi;
mod operations;
mod outage;
mod readme;
mod redis_prod;
mod refresh;
mod rotation;
mod routes;
mod schemathesis;
mod session_rules;
mod sessions;
mod simplejwt;
mod store_contract;
mod users;
