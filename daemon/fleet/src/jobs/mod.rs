//! Signed provisioning jobs: envelope and signature ([`envelope`]), the
//! sans-IO lifecycle ([`machine`]), the durable ledger of seen jobs
//! ([`ledger`]), and carrying jobs out ([`apply`], [`model_update`] with
//! [`download`]).

pub mod apply;
pub mod download;
pub mod envelope;
pub mod ledger;
pub mod machine;
pub mod model_update;

pub use apply::{DeviceHooks, JobContext, NoHooks};
pub use envelope::{Job, Rejection};
pub use machine::{Action, JobBook, JobPolicy, JobReport, JobStatus, Outcome};
pub use model_update::{ModelCandidate, PreparedModel};
