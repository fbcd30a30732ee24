//! Signed provisioning jobs: envelope and signature ([`envelope`]), the
//! sans-IO lifecycle ([`machine`]), the durable ledger of seen jobs
//! ([`ledger`]), and carrying jobs out ([`apply`]).

pub mod apply;
pub mod envelope;
pub mod ledger;
pub mod machine;

pub use apply::{DeviceHooks, JobContext, NoHooks};
pub use envelope::{Job, Rejection};
pub use machine::{Action, JobBook, JobPolicy, JobReport, JobStatus, Outcome};
