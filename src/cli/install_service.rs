//! `voxd install-service`: start voxd at login (a systemd user unit, or a LaunchAgent).

use std::path::Path;

use anyhow::Result;
use clap::Args;

use voxd::ops::service::{self, ServiceOptions};

#[derive(Args)]
pub struct InstallServiceArgs {
    /// Print the steps that install the system service instead (Linux; run them as root).
    #[arg(long)]
    system: bool,
    /// Print the file and where it would go; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also load and start the service now (`systemctl --user enable --now voxd`, or
    /// `launchctl bootstrap` on macOS).
    #[arg(long, conflicts_with_all = ["dry_run", "system"])]
    enable: bool,
}

pub fn run(args: InstallServiceArgs, config: Option<&Path>) -> Result<()> {
    let options = ServiceOptions {
        system: args.system,
        dry_run: args.dry_run,
        enable: args.enable,
    };
    Ok(service::run(&options, config)?)
}
