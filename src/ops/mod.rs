//! Running voxd on a machine: installing models ([`models`], `voxd models`) and starting it
//! as a service ([`service`], `voxd install-service`). Where the files live is
//! [`crate::util::paths`]; checking a setup is [`crate::daemon::doctor`].

pub mod models;
pub mod service;
