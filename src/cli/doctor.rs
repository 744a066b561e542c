//! `voxd doctor`: the setup checked the way `voxd run` will use it, one line per check.

use std::path::Path;

use clap::Args;

use voxd::daemon::doctor::{self, DoctorOptions, Status};

#[derive(Args)]
pub struct DoctorArgs {
    /// Seconds of microphone audio to take for the level reading.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    listen: f64,
    /// Skip the microphone checks (a machine that only transcribes files).
    #[arg(long)]
    no_audio: bool,
}

/// Prints the report; the exit status is 1 when a check failed. It reads the config itself:
/// a broken config is what it is there to report.
pub fn run(args: DoctorArgs, config: Option<&Path>) -> i32 {
    let options = DoctorOptions {
        listen: args.listen,
        no_audio: args.no_audio,
    };
    let checks = doctor::run_checks(config, &options);
    print!("{}", doctor::report(&checks));
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}
