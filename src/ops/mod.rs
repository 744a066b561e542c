//! Running voxd on a machine: where its files live ([`paths`]), installing models
//! ([`models`], `voxd models`), checking a setup ([`doctor`], `voxd doctor`) and starting it
//! as a service ([`service`], `voxd install-service`).

pub mod doctor;
pub mod models;
pub mod paths;
pub mod service;
